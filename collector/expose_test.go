package collector

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/wsgi-exporter/wsgi_exporter/gunicorn"
)

var (
	fakeOdd     = gauge(testKind, "fake_odd", "Odd values: \\ back\nslash \"quoted\".", "a", "b")
	fakeOddC    = counter(testKind, "fake_odd_total", "A counter.", "a")
	fakeOddU    = untyped(testKind, "fake_odd_untyped", "Untyped.")
	fakeOddHist = histogram(testKind, "fake_odd_seconds", "A histogram.", "a")
)

// oddSource writes values and label values that need care in the formats.
type oddSource struct {
	cfg    Config
	values []float64
	labels []string
}

func (o *oddSource) Kind() Kind     { return testKind }
func (o *oddSource) Config() Config { return o.cfg }
func (o *oddSource) Scrape(_ context.Context, w *Writer) error {
	for i, v := range o.values {
		a, b := o.labels[i%len(o.labels)], o.labels[(i+1)%len(o.labels)]
		w.Value(fakeOdd, v, a+string(rune('a'+i%26)), b)
		w.Value(fakeOddC, v, a+string(rune('a'+i%26)))
		if i == 0 {
			w.Value(fakeOddU, v)
		}
	}
	bounds := []float64{-1, 0, 0.005, 1, 2.5, 1e21}
	w.Histogram(fakeOddHist, 7, math.NaN(), bounds, []uint64{0, 1, 2, 3, 1 << 60, 5}, "x")
	w.Histogram(fakeOddHist, 1000000, 12.5, []float64{1, math.Inf(1)}, []uint64{999999, 1000000}, "y")
	return nil
}

var oddValues = []float64{0, 1, -1, 2, -2, 0.5, 1e21, 1e-7, 123456789, 1.795326486e+09, math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), math.MaxFloat64, math.SmallestNonzeroFloat64}

// exposeBoth writes every one of our families of an answer directly and through client_model
// structs and expfmt, in text 0.0.4 and OpenMetrics 1.0, and fails on any difference.
func exposeBoth(t *testing.T, srcs ...Source) int {
	t.Helper()
	e := newExporter(t, srcs...)
	fams, release, err := e.gather(context.Background(), time.Minute)
	defer release()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range fams {
		if f.ours == nil && f.app == nil && f.mf == nil {
			continue
		}
		for _, format := range []expfmt.Format{expfmt.NewFormat(expfmt.TypeTextPlain), expfmt.NewFormat(expfmt.TypeOpenMetrics)} {
			_, om := directFormat(format)
			var got []byte
			if f.ours != nil {
				got = f.ours.append(nil, om, func(b []byte) []byte { return b })
			} else if f.app != nil {
				var ok bool
				if got, ok = f.app.append(nil, om, func(b []byte) []byte { return b }); !ok {
					continue // left to expfmt
				}
			} else {
				var ok bool
				if got, ok = appendDTO(nil, f.mf, om); !ok {
					continue // left to expfmt
				}
			}
			var want bytes.Buffer
			if err := expfmt.NewEncoder(&want, format).Encode(f.dto()); err != nil {
				t.Fatalf("%s: expfmt: %v", f.name(), err)
			}
			if !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("%s in %s:\nours:\n%s\nexpfmt:\n%s", f.name(), format, got, want.Bytes())
			}
			if om {
				n++
			}
		}
	}
	return n
}

// Our families are written byte for byte as expfmt writes them, in both text formats: every
// uWSGI fixture (two sources merged, one with constant labels), nginx, gunicorn /proc and
// statsd, and values and labels that need escaping or special spelling.
func TestExpositionMatchesExpfmt(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(uwsgiFixtures, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatal(err)
	}
	for _, f := range files {
		a, err := NewUWSGI(Config{Address: "file://" + mustAbs(t, f), Name: "b-second"}, UWSGIOptions{CollectCores: true})
		if err != nil {
			t.Fatal(err)
		}
		b, err := NewUWSGI(Config{Address: "file://" + mustAbs(t, f), Name: "a-first", Labels: map[string]string{"env": "pro\"d\n"}}, UWSGIOptions{CollectCores: true})
		if err != nil {
			t.Fatal(err)
		}
		if n := exposeBoth(t, a, b); n < 30 {
			t.Fatalf("%s: %d families", f, n)
		}
	}
	statsd := runStatsd(t, gunicorn.StatsdConfig{TagLabels: []string{"env", "svc"}})
	for _, d := range statsdFixture(t) {
		statsd.State().HandleDatagram(d)
	}
	exposeBoth(t, statsd, newGP("/run/g.pid", &fakeProcReader{m: master(100, 101, 102, 103)}))
	exposeBoth(t, &oddSource{cfg: Config{Address: "odd"}, values: oddValues, labels: []string{"", `\`, `"`, "\n", "é\x00", `a\"b\\n`, "plain"}})
}

// The application's families (client_model structs) are written as expfmt writes them too:
// every multiprocess fixture directory, with and without the multiproc_dir label, and the
// fractional histograms (left to expfmt in OpenMetrics, which refuses them).
func TestAppExpositionMatchesExpfmt(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(mpFixtures, "dirs", "*"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range dirs {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			continue
		}
		for _, label := range []bool{false, true} {
			n += exposeBoth(t, newMP(d, MultiprocOptions{DirLabel: label}))
		}
	}
	if n < 100 {
		t.Fatalf("%d families compared", n)
	}
	dir := t.TempDir()
	mpWriteDB(t, dir, "histogram_1.db",
		mpEntry{`["h", "h_bucket", {"le": "1.0"}, "H."]`, 0.5},
		mpEntry{`["h", "h_bucket", {"le": "+Inf"}, "H."]`, 1.5},
		mpEntry{`["h", "h_sum", {}, "H."]`, 2})
	// Counts of a million: the text format writes them as floats (1e+06), OpenMetrics as integers.
	mpWriteDB(t, dir, "summary_1.db",
		mpEntry{`["s", "s_count", {"a": "x"}, "S."]`, 1e6},
		mpEntry{`["s", "s_sum", {"a": "x"}, "S."]`, 12.5})
	mpWriteDB(t, dir, "counter_1.db", mpEntry{`["big", "big_total", {}, "Big."]`, 1e6})
	mpWriteDB(t, dir, "histogram_2.db",
		mpEntry{`["g", "g_bucket", {"le": "1.0"}, "G."]`, 1e6},
		mpEntry{`["g", "g_sum", {}, "G."]`, 3})
	if n := exposeBoth(t, newMP(dir, MultiprocOptions{})); n < 3 {
		t.Fatalf("%d families compared", n)
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// FuzzExposition compares our writing of arbitrary values and label values with expfmt's.
func FuzzExposition(f *testing.F) {
	f.Add(1.5, -3.0, "a", "b\n\"c\\")
	f.Add(math.Inf(1), 1e300, "", "é")
	f.Fuzz(func(t *testing.T, v1, v2 float64, l1, l2 string) {
		if !utfOK(l1) || !utfOK(l2) {
			return
		}
		exposeBoth(t, &oddSource{cfg: Config{Address: "fuzz"}, values: []float64{v1, v2}, labels: []string{l1, l2}})
		appBoth(t, v1, v2, l1, l2)
		fuzzAppFamilies(t, v1, v2, l1, l2)
	})
}

// appBoth compares appendDTO with expfmt on application-like families of the given values.
func appBoth(t *testing.T, v1, v2 float64, l1, l2 string) {
	lp := func(n, v string) *dto.LabelPair { return &dto.LabelPair{Name: &n, Value: &v} }
	u := func(v float64) *uint64 { x := uint64(math.Abs(v)) % (1 << 53); return &x }
	f := func(v float64) *float64 { return &v }
	labels := []*dto.LabelPair{lp("a", l1), lp("b", l2)}
	fams := []*dto.MetricFamily{
		{Name: f2s("app_g"), Help: &l1, Type: dto.MetricType_GAUGE.Enum(), Metric: []*dto.Metric{{Label: labels, Gauge: &dto.Gauge{Value: &v1}}, {Gauge: &dto.Gauge{Value: &v2}}}},
		{Name: f2s("app_c_total"), Help: &l2, Type: dto.MetricType_COUNTER.Enum(), Metric: []*dto.Metric{{Label: labels, Counter: &dto.Counter{Value: &v1}}}},
		{Name: f2s("app_s"), Type: dto.MetricType_SUMMARY.Enum(), Metric: []*dto.Metric{{Label: labels, Summary: &dto.Summary{SampleCount: u(v1), SampleSum: &v2}}}},
		{Name: f2s("app_h"), Help: f2s(""), Type: dto.MetricType_HISTOGRAM.Enum(), Metric: []*dto.Metric{
			{Label: labels, Histogram: &dto.Histogram{SampleCount: u(v2), SampleSum: &v1, Bucket: []*dto.Bucket{{UpperBound: &v1, CumulativeCount: u(v1)}, {UpperBound: f(math.Inf(1)), CumulativeCount: u(v2)}}}},
			{Histogram: &dto.Histogram{SampleCountFloat: f(math.Abs(v2)), SampleSum: &v2, Bucket: []*dto.Bucket{{UpperBound: &v2, CumulativeCountFloat: f(math.Abs(v1))}}}}}},
	}
	for _, mf := range fams {
		for _, format := range []expfmt.Format{expfmt.NewFormat(expfmt.TypeTextPlain), expfmt.NewFormat(expfmt.TypeOpenMetrics)} {
			_, om := directFormat(format)
			got, ok := appendDTO(nil, mf, om)
			if !ok {
				continue
			}
			var want bytes.Buffer
			if err := expfmt.NewEncoder(&want, format).Encode(mf); err != nil {
				t.Fatalf("%s: expfmt: %v (ours wrote it)", mf.GetName(), err)
			}
			if !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("%s in %s:\nours:\n%s\nexpfmt:\n%s", mf.GetName(), format, got, want.Bytes())
			}
		}
	}
}

func f2s(s string) *string { return &s }

func utfOK(s string) bool { return strings.ToValidUTF8(s, "") == s }
