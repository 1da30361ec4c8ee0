package collector

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wsgi-exporter/wsgi_exporter/multiproc"
)

const mpFixtures = "../fixtures/multiproc"

// mpGather scrapes a multiprocess source once and gathers it as client_golang would serve it.
func mpGather(t testing.TB, m *Multiproc) []*dto.MetricFamily {
	t.Helper()
	return scrapeFamilies(t, m)
}

// mpAppFamilies keeps the application's families: the directory's own health metrics go.
func mpAppFamilies(fams []*dto.MetricFamily) map[string]*dto.MetricFamily {
	out := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		if !mpReservedNames[f.GetName()] {
			out[f.GetName()] = f
		}
	}
	return out
}

// mpParseExpected parses a Python exposition; families without samples (a never-set
// mostrecent gauge: Python prints HELP and TYPE only) are left out, as no Go exposition can
// hold them.
func mpParseExpected(t testing.TB, path string) map[string]*dto.MetricFamily {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for n, fam := range fams {
		if len(fam.GetMetric()) == 0 {
			delete(fams, n)
		}
	}
	return fams
}

// mpLabelKey renders a series' labels sorted by name, as {a="1",b="2"}.
func mpLabelKey(m *dto.Metric) string {
	var ls []string
	for _, l := range m.GetLabel() {
		ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	sort.Strings(ls)
	return "{" + strings.Join(ls, ",") + "}"
}

// mpSampleSet renders a family's samples as sorted "labels value" lines, with float counts
// and NaN compared by their text.
func mpSampleSet(f *dto.MetricFamily) []string {
	var out []string
	num := func(v float64) string {
		if math.IsNaN(v) {
			return "NaN"
		}
		return fmt.Sprint(v)
	}
	for _, m := range f.GetMetric() {
		lab := mpLabelKey(m)
		switch {
		case m.Counter != nil:
			out = append(out, lab+" "+num(m.GetCounter().GetValue()))
		case m.Gauge != nil:
			out = append(out, lab+" "+num(m.GetGauge().GetValue()))
		case m.Summary != nil:
			out = append(out, lab+" count="+num(float64(m.GetSummary().GetSampleCount()))+" sum="+num(m.GetSummary().GetSampleSum()))
		case m.Histogram != nil:
			h := m.GetHistogram()
			c := h.GetSampleCountFloat()
			if c == 0 {
				c = float64(h.GetSampleCount())
			}
			s := lab + " count=" + num(c) + " sum=" + num(h.GetSampleSum())
			for _, b := range h.GetBucket() {
				bc := b.GetCumulativeCountFloat()
				if bc == 0 {
					bc = float64(b.GetCumulativeCount())
				}
				s += fmt.Sprintf(" le%s=%s", num(b.GetUpperBound()), num(bc))
			}
			out = append(out, s)
		default:
			out = append(out, lab+" untyped "+num(m.GetUntyped().GetValue()))
		}
	}
	sort.Strings(out)
	return out
}

// mpSampleValues returns a family's samples as "labels" -> values (value; or count, sum and
// the cumulative bucket counts).
func mpSampleValues(f *dto.MetricFamily) map[string][]float64 {
	out := map[string][]float64{}
	for _, m := range f.GetMetric() {
		lab := mpLabelKey(m)
		switch {
		case m.Counter != nil:
			out[lab] = []float64{m.GetCounter().GetValue()}
		case m.Gauge != nil:
			out[lab] = []float64{m.GetGauge().GetValue()}
		case m.Summary != nil:
			out[lab] = []float64{float64(m.GetSummary().GetSampleCount()), m.GetSummary().GetSampleSum()}
		case m.Histogram != nil:
			h := m.GetHistogram()
			c := h.GetSampleCountFloat()
			if c == 0 {
				c = float64(h.GetSampleCount())
			}
			vs := []float64{c, h.GetSampleSum()}
			for _, b := range h.GetBucket() {
				bc := b.GetCumulativeCountFloat()
				if bc == 0 {
					bc = float64(b.GetCumulativeCount())
				}
				vs = append(vs, b.GetUpperBound(), bc)
			}
			out[lab] = vs
		default:
			out[lab] = []float64{m.GetUntyped().GetValue()}
		}
	}
	return out
}

// mpGamma is gamma(n) = n*2^-53 / (1 - n*2^-53): a sum of n values of one sign, rounded at
// each addition (Python) or once (the exporter), differs by at most that, relative.
func mpGamma(n int) float64 { return float64(n) * 0x1p-53 / (1 - float64(n)*0x1p-53) }

// mpWithin reports whether got is want up to the rounding docs/multiproc.md states for sums of
// terms of one sign: relative rel (mpGamma of the terms' count).
func mpWithin(got, want, rel float64) bool {
	if got == want || (math.IsNaN(got) && math.IsNaN(want)) {
		return true
	}
	if math.IsInf(got, 0) || math.IsInf(want, 0) || (got < 0) != (want < 0) {
		return false
	}
	return math.Abs(got-want) <= rel*math.Max(math.Abs(got), math.Abs(want))
}

// mpCompareFamiliesWithin is mpCompareFamilies with values compared by mpWithin.
func mpCompareFamiliesWithin(t *testing.T, got, want map[string]*dto.MetricFamily, rel float64) {
	t.Helper()
	for n, w := range want {
		g := got[n]
		if g == nil {
			t.Errorf("missing family %s", n)
			continue
		}
		if g.GetType() != w.GetType() || g.GetHelp() != w.GetHelp() {
			t.Errorf("%s: type %v help %q, want %v %q", n, g.GetType(), g.GetHelp(), w.GetType(), w.GetHelp())
		}
		gv, wv := mpSampleValues(g), mpSampleValues(w)
		if len(gv) != len(wv) {
			t.Errorf("%s: %d series, want %d", n, len(gv), len(wv))
		}
		for lab, ws := range wv {
			gs := gv[lab]
			ok := len(gs) == len(ws)
			for i := 0; ok && i < len(ws); i++ {
				ok = mpWithin(gs[i], ws[i], rel)
			}
			if !ok {
				t.Errorf("%s%s = %v, want %v (relative %g)", n, lab, gs, ws, rel)
			}
		}
	}
	for n := range got {
		if want[n] == nil {
			t.Errorf("unexpected family %s", n)
		}
	}
	if len(want) == 0 {
		t.Fatal("nothing compared")
	}
}

// mpCompareFamilies fails on any difference of families, types, help, label sets or values.
func mpCompareFamilies(t *testing.T, got, want map[string]*dto.MetricFamily) {
	t.Helper()
	var names []string
	for n := range want {
		names = append(names, n)
	}
	for n := range got {
		if want[n] == nil {
			t.Errorf("unexpected family %s:\n%s", n, strings.Join(mpSampleSet(got[n]), "\n"))
		}
	}
	sort.Strings(names)
	for _, n := range names {
		w, g := want[n], got[n]
		if g == nil {
			t.Errorf("missing family %s", n)
			continue
		}
		if g.GetType() != w.GetType() || g.GetHelp() != w.GetHelp() {
			t.Errorf("%s: type %v help %q, want %v %q", n, g.GetType(), g.GetHelp(), w.GetType(), w.GetHelp())
		}
		gs, ws := mpSampleSet(g), mpSampleSet(w)
		if !slices.Equal(gs, ws) {
			t.Errorf("%s samples differ:\ngot:\n  %s\nwant:\n  %s", n, strings.Join(gs, "\n  "), strings.Join(ws, "\n  "))
		}
	}
	if len(names) == 0 {
		t.Fatal("nothing compared")
	}
}

// mpTextRoundTrip encodes families in the text format 0.0.4 and parses them back.
func mpTextRoundTrip(t testing.TB, fams []*dto.MetricFamily) []*dto.MetricFamily {
	t.Helper()
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range fams {
		if err := enc.Encode(f); err != nil {
			t.Fatalf("encoding %s: %v", f.GetName(), err)
		}
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	parsed, err := p.TextToMetricFamilies(&buf)
	if err != nil {
		t.Fatalf("parsing our exposition: %v", err)
	}
	var out []*dto.MetricFamily
	for _, f := range parsed {
		out = append(out, f)
	}
	return out
}

func newTestMultiproc(dir string, opts multiproc.Options) *Multiproc {
	s, err := NewMultiproc(Config{Address: dir}, MultiprocOptions{Options: opts})
	if err != nil {
		panic(err)
	}
	return s.(*Multiproc)
}

// TestMultiprocConformance compares the merge of every fixture directory with the output of
// the Python client that wrote it. Python adds the files' values one after the other, rounding
// at each addition; we round the exact sum once. So a float sum may differ by the bound the
// docs state: for a sum of n terms of one sign (every sum in these fixtures that is not exact
// in both), gamma(n) relative, with n at most the directory's file count. Whole values
// and exact sums must be equal; TestMultiprocDeadWriters checks exact equality with Python's
// math.fsum.
func TestMultiprocConformance(t *testing.T) {
	cases := map[string]string{
		"small_015":                        "small_015.sorted.txt",
		"small_016":                        "small_016.sorted.txt",
		"small_new":                        "small_new.sorted.txt",
		"edge_016":                         "edge_016.sorted.txt",
		"edge_new":                         "edge_new.sorted.txt",
		"gunicorn_prometheus_exporter_016": "gunicorn_prometheus_exporter_016.sorted.txt",
		"mixed_016_new":                    "mixed_016_new.reimpl_new.sorted.txt",
	}
	for dir, exp := range cases {
		t.Run(dir, func(t *testing.T) {
			want := mpParseExpected(t, filepath.Join(mpFixtures, "expected", exp))
			mapped := newTestMultiproc(filepath.Join(mpFixtures, "dirs", dir), multiproc.Options{})
			read := newTestMultiproc(filepath.Join(mpFixtures, "dirs", dir), multiproc.Options{NoMmap: true})
			// Each twice: the second scrape runs on cached keys and layouts.
			files, _ := filepath.Glob(filepath.Join(mpFixtures, "dirs", dir, "*.db"))
			rel := mpGamma(len(files))
			for _, m := range []*Multiproc{mapped, mapped, read, read} {
				fams := mpGather(t, m)
				// As served in the text format 0.0.4, where names outside the legacy
				// character set are escaped with underscores, as Python does.
				mpCompareFamiliesWithin(t, mpAppFamilies(mpTextRoundTrip(t, fams)), want, rel)
				if dir != "edge_new" { // its UTF-8 names are escaped only in the exposition
					mpCompareFamiliesWithin(t, mpAppFamilies(fams), want, rel)
				}
			}
		})
	}
}
