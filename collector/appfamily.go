package collector

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"

	"github.com/wsgi-exporter/wsgi_exporter/multiproc"
)

// An application's families (a multiprocess directory's, a Redis store's) are kept for the
// answer as references to the merged series of the snapshot (multiproc.Series, not copied)
// with their admitted labels, and written from there in text 0.0.4 and OpenMetrics 1.0, byte
// for byte as expfmt writes the client_model structs the exporter built for them before
// (TestAppFamilyMatchesDTO, FuzzExposition). Other formats, and the Gatherer, get those
// structs, built one family at a time (appFamily.dto).
//
// The snapshot is the Reader's answer to one Read: nothing in multiproc reuses or changes the
// slices behind its families, series, labels or buckets afterwards (every finish makes new
// ones; labels are the parsed keys', never changed), so the answer may be written after the
// Reader serves the next Read (TestMultiprocConcurrentAnswers).

// appFamily is one application family of the answer.
type appFamily struct {
	name, help string
	typ        dto.MetricType
	series     []appSeries        // in the answer's order
	labels     []*multiproc.Label // the series' labels, one after the other
	// direct: text and OpenMetrics are written here; false when a name or label name is not a
	// legacy name (expfmt's escaping schemes apply). floatOM: a histogram with fractional
	// counts, which OpenMetrics 1.0 leaves to expfmt.
	direct, floatOM bool

	// While the Writer builds it: where its series and labels start in the Writer's lists.
	seriesAt, seriesEnd, labelsAt, labelsEnd int
}

// appSeries is one series of an application family: the merged series and its labels,
// sorted by name (the source and constant labels among them), labels[off:off+n] of its family.
type appSeries struct {
	s      *multiproc.Series
	off, n int32
}

func (af *appFamily) seriesLabels(i int) []*multiproc.Label {
	s := &af.series[i]
	return af.labels[s.off : s.off+s.n : s.off+s.n]
}

// compare orders series as compareMetrics does: by number of labels, then label values in
// the order of the (sorted) label names.
func (af *appFamily) compare(a, b appSeries) int {
	if a.n != b.n {
		if a.n < b.n {
			return -1
		}
		return 1
	}
	la, lb := af.labels[a.off:a.off+a.n], af.labels[b.off:b.off+b.n]
	for i, l := range la {
		if c := strings.Compare(l.Value, lb[i].Value); c != 0 {
			return c
		}
	}
	return 0
}

// writeAppFamilies writes an application's merged series (a multiprocess directory's, or a
// Redis store's: multiproc_redis.go) and returns what it had to leave out, by reason. With
// srcLabel the series carry the kind's source label. A family whose name claims refuses is
// left out whole (reason name_conflict), and conflict is told; a series that client_golang's
// registry would refuse (a name that is not UTF-8, a label name that is invalid or repeated,
// a value that is not UTF-8, a summary with a quantile label) is left out with reason invalid;
// one with a label the exporter adds itself with reason label_conflict.
func writeAppFamilies(w *Writer, families []multiproc.Family, srcLabel bool, claims *nameClaims, conflict func(family string)) map[string]int {
	drops := map[string]int{}
	// The labels every series carries: the source's, and the constant ones.
	var extra []multiproc.Label // not reused: the families point into it
	if srcLabel {
		extra = append(extra, multiproc.Label{Name: w.kind.SourceLabel, Value: w.srcValue})
	}
	for i, n := range w.consts.names {
		extra = append(extra, multiproc.Label{Name: n, Value: w.consts.values[i]})
	}
	byName := func(a, b *multiproc.Label) int { return strings.Compare(a.Name, b.Name) }
	var values []string
	first := len(w.app)
	for fi := range families {
		f := &families[fi]
		name := f.Name
		if f.Type == multiproc.TypeCounter {
			name += "_total"
		}
		if !claims.claim(name, f.Type, f.Help, srcLabel) {
			drops[mpReasonNameConflict] += len(f.Series)
			conflict(name)
			continue
		}
		if !model.UTF8Validation.IsValidMetricName(name) {
			drops[mpReasonInvalid] += len(f.Series)
			continue
		}
		typ := mpDTOType(f.Type)
		if typ < 0 {
			drops[mpReasonInvalid] += len(f.Series)
			continue
		}
		af := &appFamily{name: name, help: f.Help, typ: typ, seriesAt: len(w.appSeries), labelsAt: len(w.appLabels),
			direct: model.LegacyValidation.IsValidMetricName(name)}
	series:
		for si := range f.Series {
			s := &f.Series[si]
			off := len(w.appLabels)
			values = values[:0]
			for li := range s.Labels {
				l := &s.Labels[li]
				if (srcLabel && l.Name == w.kind.SourceLabel) || slices.Contains(w.consts.names, l.Name) {
					drops[mpReasonLabelConflict]++
					w.appLabels = w.appLabels[:off]
					continue series
				}
				if !validLabelName(l.Name) || !utf8.ValidString(l.Value) || (typ == dto.MetricType_SUMMARY && l.Name == model.QuantileLabel) {
					drops[mpReasonInvalid]++
					w.appLabels = w.appLabels[:off]
					continue series
				}
				w.appLabels = append(w.appLabels, l)
				values = append(values, l.Value)
			}
			for i := range extra {
				w.appLabels = append(w.appLabels, &extra[i])
			}
			labels := w.appLabels[off:]
			if !slices.IsSortedFunc(labels, byName) {
				slices.SortFunc(labels, byName)
			}
			for i := 1; i < len(labels); i++ {
				if labels[i].Name == labels[i-1].Name {
					drops[mpReasonInvalid]++
					w.appLabels = w.appLabels[:off]
					continue series
				}
			}
			if !w.admitValues(mpSamples(typ, s), values, false) {
				w.appLabels = w.appLabels[:off]
				continue
			}
			for _, l := range labels {
				af.direct = af.direct && model.LegacyValidation.IsValidMetricName(l.Name) // as appendDTO checks
			}
			if typ == dto.MetricType_HISTOGRAM && !af.floatOM {
				af.floatOM = !histIntegral(s) && histPositive(s)
			}
			w.appSeries = append(w.appSeries, appSeries{s: s, off: int32(off - af.labelsAt), n: int32(len(labels))})
		}
		if len(w.appSeries) > af.seriesAt {
			af.seriesEnd, af.labelsEnd = len(w.appSeries), len(w.appLabels)
			w.app = append(w.app, af)
		}
	}
	// The lists are complete: the families take their parts (the lists may have moved while
	// they grew) and are sorted.
	for _, af := range w.app[first:] {
		af.series = w.appSeries[af.seriesAt:af.seriesEnd:af.seriesEnd]
		af.labels = w.appLabels[af.labelsAt:af.labelsEnd:af.labelsEnd]
		if !slices.IsSortedFunc(af.series, af.compare) {
			slices.SortFunc(af.series, af.compare)
		}
	}
	return drops
}

// histIntegral says whether every count of a histogram series is integral (written as an
// integer; otherwise the float fields of client_model carry them).
func histIntegral(s *multiproc.Series) bool {
	ints := integral(s.Count)
	for _, b := range s.Buckets {
		ints = ints && integral(b.Count)
	}
	return ints
}

// histPositive says whether a count of a histogram series is above 0: with fractional counts,
// what makes expfmt's OpenMetrics 1.0 encoder refuse the family (appendDTO leaves it to it).
func histPositive(s *multiproc.Series) bool {
	if s.Count > 0 {
		return true
	}
	for _, b := range s.Buckets {
		if b.Count > 0 {
			return true
		}
	}
	return false
}

// mergeApps merges application families of one name (two directories labelled with their
// directory share a family) and sorts them by name.
func mergeApps(apps []*appFamily) []*appFamily {
	slices.SortStableFunc(apps, func(a, b *appFamily) int { return strings.Compare(a.name, b.name) })
	out := apps[:0]
	for _, af := range apps {
		if n := len(out); n > 0 && out[n-1].name == af.name {
			prev := out[n-1]
			m := &appFamily{name: prev.name, help: prev.help, typ: prev.typ,
				direct: prev.direct && af.direct, floatOM: prev.floatOM || af.floatOM,
				labels: slices.Concat(prev.labels, af.labels), series: slices.Concat(prev.series, af.series)}
			shift := int32(len(prev.labels))
			for i := len(prev.series); i < len(m.series); i++ {
				m.series[i].off += shift
			}
			slices.SortStableFunc(m.series, m.compare)
			out[n-1] = m
			continue
		}
		out = append(out, af)
	}
	return out
}

// append appends the family in text 0.0.4 (om false) or OpenMetrics 1.0 (om true), byte for
// byte as expfmt writes its client_model structs, calling flush whenever b grows past flushAt,
// and reports true; it appends nothing and reports false for what it leaves to expfmt (as
// appendDTO does): names that are not legacy names, and OpenMetrics' fractional histograms.
func (af *appFamily) append(b []byte, om bool, flush func([]byte) []byte) ([]byte, bool) {
	if !af.direct || len(af.series) == 0 || (om && af.floatOM) {
		return b, false
	}
	name := af.name
	shown := name
	if om && af.typ == dto.MetricType_COUNTER {
		shown = strings.TrimSuffix(name, "_total") // always there: writeAppFamilies adds it
	}
	b = append(b, "# HELP "...)
	b = append(b, shown...)
	b = append(b, ' ')
	b = appendEscaped(b, af.help, om)
	b = append(b, "\n# TYPE "...)
	b = append(b, shown...)
	b = append(b, ' ')
	b = append(b, strings.ToLower(af.typ.String())...)
	b = append(b, '\n')
	for i := range af.series {
		s := af.series[i].s
		labels := af.seriesLabels(i)
		switch af.typ {
		case dto.MetricType_COUNTER, dto.MetricType_GAUGE:
			b = appendAppLine(b, name, "", labels, "", 0, om)
			b = appendFloat(b, s.Value, om)
		case dto.MetricType_SUMMARY:
			count := summaryCount(s)
			b = appendAppLine(b, name, "_sum", labels, "", 0, om)
			b = appendFloat(b, s.Sum, om)
			b = append(b, '\n')
			b = appendAppLine(b, name, "_count", labels, "", 0, om)
			b = appendCount(b, count, float64(count), om)
		case dto.MetricType_HISTOGRAM:
			b = appendAppHistogram(b, name, labels, s, om)
		}
		b = append(b, '\n')
		if len(b) >= flushAt {
			b = flush(b)
		}
	}
	return b, true
}

// appendAppHistogram appends a histogram series' lines but the last newline. Its counts are
// written as client_model carries them (mpHistogram): integral ones as integers, others as
// floats in the text format (OpenMetrics leaves those with a count above 0 to expfmt and
// writes the others as 0, as expfmt does).
func appendAppHistogram(b []byte, name string, labels []*multiproc.Label, s *multiproc.Series, om bool) []byte {
	ints := histIntegral(s)
	count := func(b []byte, v float64) []byte {
		if ints {
			return appendCount(b, uint64(v), v, om)
		}
		return appendCount(b, 0, v, om)
	}
	inf := false
	for _, bk := range s.Buckets {
		b = appendAppLine(b, name, "_bucket", labels, "le", bk.UpperBound, om)
		b = count(b, bk.Count)
		b = append(b, '\n')
		inf = inf || math.IsInf(bk.UpperBound, 1)
	}
	if !inf {
		b = appendAppLine(b, name, "_bucket", labels, "le", math.Inf(1), om)
		b = count(b, s.Count)
		b = append(b, '\n')
	}
	b = appendAppLine(b, name, "_sum", labels, "", 0, om)
	b = appendFloat(b, s.Sum, om)
	b = append(b, '\n')
	b = appendAppLine(b, name, "_count", labels, "", 0, om)
	return count(b, s.Count)
}

// appendCount appends a count as expfmt writes it: OpenMetrics the integer c, the text format
// the float f (c when f is 0).
func appendCount(b []byte, c uint64, f float64, om bool) []byte {
	if om {
		return strconv.AppendUint(b, c, 10)
	}
	if f == 0 {
		f = float64(c)
	}
	return appendFloat(b, f, false)
}

// summaryCount is a summary's count as an integer: NaN and negatives (corruption) become 0.
func summaryCount(s *multiproc.Series) uint64 {
	if s.Count > 0 && s.Count < math.MaxUint64 {
		return uint64(s.Count)
	}
	return 0
}

// appendAppLine appends a line of an application series (appendLine).
func appendAppLine(b []byte, name, suffix string, labels []*multiproc.Label, le string, bound float64, om bool) []byte {
	return appendLine(b, name, suffix, labels, appLabel, le, bound, om)
}

func appLabel(l *multiproc.Label) (string, string) { return l.Name, l.Value }

// dto returns the family as client_model structs, as the exporter built them for every
// application series before (for the protobuf answer and the Gatherer).
func (af *appFamily) dto() *dto.MetricFamily {
	mf := &dto.MetricFamily{Name: &af.name, Help: &af.help, Type: af.typ.Enum()}
	ms := make([]dto.Metric, len(af.series))
	mf.Metric = make([]*dto.Metric, len(af.series))
	pairs := make([]dto.LabelPair, len(af.labels))
	ptrs := make([]*dto.LabelPair, len(af.labels))
	for i := range af.series {
		as := &af.series[i]
		s := as.s
		m := &ms[i]
		mf.Metric[i] = m
		if as.n > 0 {
			m.Label = ptrs[as.off : as.off+as.n : as.off+as.n]
			for j, l := range af.seriesLabels(i) {
				p := &pairs[int(as.off)+j]
				p.Name, p.Value = &l.Name, &l.Value
				m.Label[j] = p
			}
		}
		switch af.typ {
		case dto.MetricType_COUNTER:
			m.Counter = &dto.Counter{Value: &s.Value}
		case dto.MetricType_GAUGE:
			m.Gauge = &dto.Gauge{Value: &s.Value}
		case dto.MetricType_SUMMARY:
			m.Summary = &dto.Summary{SampleCount: proto64(summaryCount(s)), SampleSum: &s.Sum}
		case dto.MetricType_HISTOGRAM:
			m.Histogram = mpHistogram(s)
		}
	}
	return mf
}

func proto64(v uint64) *uint64 { return &v }

// mpHistogram is a histogram whose counts may be fractional, as the files hold floats.
// Integral counts are written as integers (what every reader expects); otherwise the float
// fields of dto.Histogram carry them.
func mpHistogram(s *multiproc.Series) *dto.Histogram {
	ints := histIntegral(s)
	h := &dto.Histogram{SampleSum: &s.Sum}
	if ints {
		h.SampleCount = proto64(uint64(s.Count))
	} else {
		h.SampleCountFloat = &s.Count
	}
	if len(s.Buckets) > 0 {
		bs := make([]dto.Bucket, len(s.Buckets))
		h.Bucket = make([]*dto.Bucket, len(s.Buckets))
		for i := range s.Buckets {
			b := &s.Buckets[i]
			db := &bs[i]
			db.UpperBound = &b.UpperBound
			if ints {
				db.CumulativeCount = proto64(uint64(b.Count))
			} else {
				db.CumulativeCountFloat = &b.Count
			}
			h.Bucket[i] = db
		}
	}
	return h
}
