package collector

import (
	"math"
	"strconv"
	"strings"
	"sync"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Our families are written to the answer straight from their compact series in the two text
// formats Prometheus asks for (text 0.0.4 and OpenMetrics 1.0), byte for byte as
// prometheus/common/expfmt writes them: TestExpositionMatchesExpfmt and FuzzExposition compare
// the two on every fixture and on random families. Their names and label names are all legacy
// names (Family.check), so no escaping scheme changes them. Every other format (protobuf,
// OpenMetrics 2.0, ...) gets client_model structs, one family at a time, encoded by expfmt.

// direct says how a negotiated format is written from compact series: text, OpenMetrics, or
// neither (client_model structs and expfmt).
func directFormat(f expfmt.Format) (text, om bool) {
	switch f.FormatType() {
	case expfmt.TypeTextPlain:
		return true, false
	case expfmt.TypeOpenMetrics:
		return false, !strings.Contains(string(f), "version="+expfmt.OpenMetricsVersion_2_0_0)
	}
	return false, false
}

// familyHeaders are a family's HELP and TYPE lines in both formats, made once.
type familyHeaders struct {
	once     sync.Once
	text, om string
}

var headers sync.Map // *Family -> *familyHeaders

func (f *Family) headers() *familyHeaders {
	h, ok := headers.Load(f)
	if !ok {
		h, _ = headers.LoadOrStore(f, &familyHeaders{})
	}
	fh := h.(*familyHeaders)
	fh.once.Do(func() {
		typ := map[dto.MetricType]string{dto.MetricType_COUNTER: "counter", dto.MetricType_GAUGE: "gauge",
			dto.MetricType_UNTYPED: "untyped", dto.MetricType_HISTOGRAM: "histogram", dto.MetricType_SUMMARY: "summary"}[f.Type]
		fh.text = "# HELP " + f.Name + " " + string(appendEscaped(nil, f.Help, false)) + "\n# TYPE " + f.Name + " " + typ + "\n"
		name := f.Name
		if f.Type == dto.MetricType_COUNTER {
			name = strings.TrimSuffix(name, "_total") // counters' names all end in _total
		}
		if f.Type == dto.MetricType_UNTYPED {
			typ = "unknown"
		}
		fh.om = "# HELP " + name + " " + string(appendEscaped(nil, f.Help, true)) + "\n# TYPE " + name + " " + typ + "\n"
		if f.Unit != "" {
			fh.om += "# UNIT " + name + " " + string(appendEscaped(nil, f.Unit, true)) + "\n"
		}
	})
	return fh
}

// appendFamily appends the lines of one of our families in text 0.0.4 (om false) or
// OpenMetrics 1.0 (om true) to b, calling flush whenever b grows past flushAt.
func (of *ourFamily) append(b []byte, om bool, flush func([]byte) []byte) []byte {
	h := of.f.headers()
	if om {
		b = append(b, h.om...)
	} else {
		b = append(b, h.text...)
	}
	name := of.f.Name
	of.series(func(fo *famOut, i int) {
		switch of.f.Type {
		case dto.MetricType_HISTOGRAM:
			b = fo.appendHistogram(b, name, i, om)
		case dto.MetricType_SUMMARY:
			b = fo.appendSummary(b, name, i, om)
		default:
			b = fo.appendLabels(append(b, name...), i, "", 0, om)
			b = append(b, ' ')
			b = appendFloat(b, fo.values[i], om)
			b = append(b, '\n')
		}
		if len(b) >= flushAt {
			b = flush(b)
		}
	})
	return b
}

// flushAt is the size at which the lines are handed to the answer's writer.
const flushAt = 16 << 10

// labelTemplate is the label part of fo's lines with the source's labels already written
// (escaped once per answer, not once per line): lits[0], the first variable label's value,
// lits[1], ..., lits[len(vars)]. The closing brace is not in it (le may come before it).
type labelTemplate struct {
	lits [][]byte
	vars []int // variable label of each gap, as an index into the family's labels
}

func (fo *famOut) template() *labelTemplate {
	if fo.tmpl != nil {
		return fo.tmpl
	}
	t := &labelTemplate{}
	var cur []byte
	sep := byte('{')
	for pos, s := range fo.lay.slots {
		cur = append(cur, sep)
		cur = append(cur, *fo.lay.names[pos]...)
		cur = append(cur, '=', '"')
		if s >= 0 {
			t.lits = append(t.lits, cur)
			t.vars = append(t.vars, s)
			cur = nil
		} else {
			cur = appendEscaped(cur, fo.label(0, pos), true) // the same for every series
		}
		cur = append(cur, '"')
		sep = ','
	}
	t.lits = append(t.lits, cur)
	fo.tmpl, fo.tmplLay, fo.tmplSrc, fo.tmplConsts = t, fo.lay, fo.w.srcValue, fo.w.consts
	return t
}

// appendLabels appends the labels of series i of fo, and le when le is set.
func (fo *famOut) appendLabels(b []byte, i int, le string, bound float64, om bool) []byte {
	if len(fo.lay.slots) == 0 {
		if le == "" {
			return b
		}
		b = append(b, '{')
	} else {
		t := fo.template()
		k := len(fo.f.Labels)
		b = append(b, t.lits[0]...)
		for j, v := range t.vars {
			b = appendEscaped(b, fo.labels[i*k+v], true)
			b = append(b, t.lits[j+1]...)
		}
		if le != "" {
			b = append(b, ',')
		}
	}
	if le != "" {
		b = append(b, le...)
		b = append(b, '=', '"')
		b = appendFloat(b, bound, om)
		b = append(b, '"')
	}
	return append(b, '}')
}

// appendHistogram appends the lines of histogram series i of fo: its buckets (+Inf added
// when missing), sum and count. The text format writes counts as floats, OpenMetrics as
// integers.
func (fo *famOut) appendHistogram(b []byte, name string, i int, om bool) []byte {
	h := fo.hists[i]
	count := func(b []byte, c uint64) []byte {
		if om {
			return strconv.AppendUint(b, c, 10)
		}
		return appendFloat(b, float64(c), false)
	}
	inf := false
	for j, ub := range h.bounds {
		b = fo.appendLabels(append(append(b, name...), "_bucket"...), i, "le", ub, om)
		b = count(append(b, ' '), fo.counts[h.off+j])
		b = append(b, '\n')
		inf = inf || math.IsInf(ub, 1)
	}
	if !inf {
		b = fo.appendLabels(append(append(b, name...), "_bucket"...), i, "le", math.Inf(1), om)
		b = count(append(b, ' '), h.count)
		b = append(b, '\n')
	}
	b = fo.appendLabels(append(append(b, name...), "_sum"...), i, "", 0, om)
	b = appendFloat(append(b, ' '), h.sum, om)
	b = append(b, '\n')
	b = fo.appendLabels(append(append(b, name...), "_count"...), i, "", 0, om)
	b = count(append(b, ' '), h.count)
	return append(b, '\n')
}

// appendSummary appends the lines of summary series i of fo: a line per quantile, sum and
// count. The text format writes the count as a float, OpenMetrics as an integer.
func (fo *famOut) appendSummary(b []byte, name string, i int, om bool) []byte {
	s := fo.sums[i]
	for j, q := range s.quantiles {
		b = fo.appendLabels(append(b, name...), i, model.QuantileLabel, q, om)
		b = appendFloat(append(b, ' '), fo.qvals[s.off+j], om)
		b = append(b, '\n')
	}
	b = fo.appendLabels(append(append(b, name...), "_sum"...), i, "", 0, om)
	b = appendFloat(append(b, ' '), s.sum, om)
	b = append(b, '\n')
	b = fo.appendLabels(append(append(b, name...), "_count"...), i, "", 0, om)
	if om {
		b = strconv.AppendUint(append(b, ' '), s.count, 10)
	} else {
		b = appendFloat(append(b, ' '), float64(s.count), false)
	}
	return append(b, '\n')
}

// appendFloat formats a value as expfmt does: shortest 'g' form, with 1, 0, -1, NaN and
// ±Inf spelled out; OpenMetrics adds ".0" to a number without a point or exponent.
func appendFloat(b []byte, f float64, om bool) []byte {
	switch {
	case f == 1:
		if om {
			return append(b, "1.0"...)
		}
		return append(b, '1')
	case f == 0:
		if om {
			return append(b, "0.0"...)
		}
		return append(b, '0')
	case f == -1:
		if om {
			return append(b, "-1.0"...)
		}
		return append(b, "-1"...)
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, 'g', -1, 64)
	if om && !containsAny(b[start:], '.', 'e') {
		b = append(b, '.', '0')
	}
	return b
}

func containsAny(b []byte, c1, c2 byte) bool {
	for _, c := range b {
		if c == c1 || c == c2 {
			return true
		}
	}
	return false
}

// appendEscaped appends s with backslash and newline escaped, and double quotes too when
// quoted (label values, and OpenMetrics help texts).
func appendEscaped(b []byte, s string, quoted bool) []byte {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\\' || c == '\n' || (quoted && c == '"') {
			clean = false
			break
		}
	}
	if clean {
		return append(b, s...)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, '\\', '\\')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '"' && quoted:
			b = append(b, '\\', '"')
		default:
			b = append(b, c)
		}
	}
	return b
}

// dto returns the family as client_model structs (for the protobuf answer and the Gatherer),
// as client_golang's const metrics build them.
func (a answerFamily) dto() *dto.MetricFamily {
	if a.mf != nil {
		return a.mf
	}
	if a.self != nil {
		return a.self.mf
	}
	if a.app != nil {
		return a.app.dto()
	}
	of := a.ours
	f := of.f
	mf := &dto.MetricFamily{Name: &f.Name, Help: &f.Help, Type: &f.Type, Metric: make([]*dto.Metric, 0, of.len())}
	if f.Unit != "" {
		mf.Unit = &f.Unit
	}
	of.series(func(fo *famOut, i int) {
		m := &dto.Metric{}
		if n := len(fo.lay.slots); n > 0 {
			m.Label = make([]*dto.LabelPair, n)
			for pos := range n {
				switch s := fo.lay.slots[pos]; {
				case s == -1:
					m.Label[pos] = fo.w.srcPair
				case s < -1:
					m.Label[pos] = fo.w.constPairs[-2-s]
				default:
					v := fo.labels[i*len(fo.f.Labels)+s]
					m.Label[pos] = &dto.LabelPair{Name: fo.lay.names[pos], Value: &v}
				}
			}
		}
		switch f.Type {
		case dto.MetricType_GAUGE:
			m.Gauge = &dto.Gauge{Value: &fo.values[i]}
		case dto.MetricType_COUNTER:
			m.Counter = &dto.Counter{Value: &fo.values[i]}
		case dto.MetricType_UNTYPED:
			m.Untyped = &dto.Untyped{Value: &fo.values[i]}
		case dto.MetricType_HISTOGRAM:
			h := &fo.hists[i]
			m.Histogram = &dto.Histogram{SampleCount: &h.count, SampleSum: &h.sum, Bucket: make([]*dto.Bucket, len(h.bounds))}
			for j := range h.bounds {
				m.Histogram.Bucket[j] = &dto.Bucket{UpperBound: &h.bounds[j], CumulativeCount: &fo.counts[h.off+j]}
			}
		case dto.MetricType_SUMMARY:
			s := &fo.sums[i]
			m.Summary = &dto.Summary{SampleCount: &s.count, SampleSum: &s.sum, Quantile: make([]*dto.Quantile, len(s.quantiles))}
			for j := range s.quantiles {
				m.Summary.Quantile[j] = &dto.Quantile{Quantile: &s.quantiles[j], Value: &fo.qvals[s.off+j]}
			}
		}
		mf.Metric = append(mf.Metric, m)
	})
	return mf
}

// appendDTO appends a client_model family (the exporter's registry's) in text 0.0.4 (om false)
// or OpenMetrics 1.0 (om true), byte for byte as expfmt writes it, and reports true; it
// appends nothing and reports false for what it leaves to expfmt: a name or label name that is
// not a legacy name (the escaping schemes apply), a type other than counter, gauge, summary and
// histogram, timestamps, exemplars, quantiles, and OpenMetrics' float histograms.
func appendDTO(b []byte, mf *dto.MetricFamily, om bool) ([]byte, bool) {
	name := mf.GetName()
	if len(mf.Metric) == 0 || !model.LegacyValidation.IsValidMetricName(name) {
		return b, false
	}
	typ := mf.GetType()
	for _, m := range mf.Metric {
		if m.TimestampMs != nil {
			return b, false
		}
		for _, l := range m.Label {
			if !model.LegacyValidation.IsValidMetricName(l.GetName()) {
				return b, false
			}
		}
		switch typ {
		case dto.MetricType_COUNTER:
			if m.Counter == nil || m.Counter.Exemplar != nil || m.Counter.CreatedTimestamp != nil {
				return b, false
			}
		case dto.MetricType_GAUGE:
			if m.Gauge == nil {
				return b, false
			}
		case dto.MetricType_SUMMARY:
			if m.Summary == nil || len(m.Summary.Quantile) > 0 || m.Summary.CreatedTimestamp != nil {
				return b, false
			}
		case dto.MetricType_HISTOGRAM:
			h := m.Histogram
			if h == nil || h.CreatedTimestamp != nil || h.Schema != nil {
				return b, false
			}
			for _, bk := range h.Bucket {
				if bk.Exemplar != nil || (om && bk.GetCumulativeCountFloat() > 0) {
					return b, false
				}
			}
			if om && h.GetSampleCountFloat() > 0 {
				return b, false
			}
		default:
			return b, false
		}
	}
	// HELP and TYPE.
	shown := name
	if om && typ == dto.MetricType_COUNTER && strings.HasSuffix(name, "_total") {
		shown = name[:len(name)-6]
	}
	if mf.Help != nil {
		b = append(b, "# HELP "...)
		b = append(b, shown...)
		b = append(b, ' ')
		b = appendEscaped(b, mf.GetHelp(), om)
		b = append(b, '\n')
	}
	b = append(b, "# TYPE "...)
	b = append(b, shown...)
	switch {
	case typ == dto.MetricType_COUNTER && om && !strings.HasSuffix(name, "_total"):
		b = append(b, " unknown\n"...)
	default:
		b = append(b, ' ')
		b = append(b, strings.ToLower(typ.String())...)
		b = append(b, '\n')
	}
	count := func(b []byte, c uint64, f float64) []byte {
		if om {
			return strconv.AppendUint(b, c, 10)
		}
		if f == 0 {
			f = float64(c)
		}
		return appendFloat(b, f, false)
	}
	for _, m := range mf.Metric {
		switch typ {
		case dto.MetricType_COUNTER:
			b = appendDTOLine(b, name, "", m.Label, "", 0, om)
			b = appendFloat(b, m.Counter.GetValue(), om)
		case dto.MetricType_GAUGE:
			b = appendDTOLine(b, name, "", m.Label, "", 0, om)
			b = appendFloat(b, m.Gauge.GetValue(), om)
		case dto.MetricType_SUMMARY:
			b = appendDTOLine(b, name, "_sum", m.Label, "", 0, om)
			b = appendFloat(b, m.Summary.GetSampleSum(), om)
			b = append(b, '\n')
			b = appendDTOLine(b, name, "_count", m.Label, "", 0, om)
			if om {
				b = strconv.AppendUint(b, m.Summary.GetSampleCount(), 10)
			} else {
				b = appendFloat(b, float64(m.Summary.GetSampleCount()), false)
			}
		case dto.MetricType_HISTOGRAM:
			h := m.Histogram
			inf := false
			for _, bk := range h.Bucket {
				b = appendDTOLine(b, name, "_bucket", m.Label, "le", bk.GetUpperBound(), om)
				b = count(b, bk.GetCumulativeCount(), bk.GetCumulativeCountFloat())
				b = append(b, '\n')
				inf = inf || math.IsInf(bk.GetUpperBound(), 1)
			}
			if !inf {
				b = appendDTOLine(b, name, "_bucket", m.Label, "le", math.Inf(1), om)
				b = count(b, h.GetSampleCount(), h.GetSampleCountFloat())
				b = append(b, '\n')
			}
			b = appendDTOLine(b, name, "_sum", m.Label, "", 0, om)
			b = appendFloat(b, h.GetSampleSum(), om)
			b = append(b, '\n')
			b = appendDTOLine(b, name, "_count", m.Label, "", 0, om)
			b = count(b, h.GetSampleCount(), h.GetSampleCountFloat())
		}
		b = append(b, '\n')
	}
	return b, true
}

// appendDTOLine appends a line of a client_model series (appendLine).
func appendDTOLine(b []byte, name, suffix string, labels []*dto.LabelPair, le string, bound float64, om bool) []byte {
	return appendLine(b, name, suffix, labels, dtoLabel, le, bound, om)
}

func dtoLabel(l *dto.LabelPair) (string, string) { return l.GetName(), l.GetValue() }

// appendLine appends a line's name and labels (le last when set) and the space before its
// value; label gives a label's name and value.
func appendLine[L any](b []byte, name, suffix string, labels []L, label func(L) (string, string), le string, bound float64, om bool) []byte {
	b = append(append(b, name...), suffix...)
	if len(labels) > 0 || le != "" {
		sep := byte('{')
		for _, l := range labels {
			n, v := label(l)
			b = append(b, sep)
			b = append(b, n...)
			b = append(b, '=', '"')
			b = appendEscaped(b, v, true)
			b = append(b, '"')
			sep = ','
		}
		if le != "" {
			b = append(b, sep)
			b = append(b, le...)
			b = append(b, '=', '"')
			b = appendFloat(b, bound, om)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	return append(b, ' ')
}
