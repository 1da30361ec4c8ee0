package collector

import (
	"bytes"
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
		if f.ours == nil {
			continue
		}
		n++
		for _, format := range []expfmt.Format{expfmt.NewFormat(expfmt.TypeTextPlain), expfmt.NewFormat(expfmt.TypeOpenMetrics)} {
			_, om := directFormat(format)
			got := f.ours.append(nil, om, func(b []byte) []byte { return b })
			var want bytes.Buffer
			if err := expfmt.NewEncoder(&want, format).Encode(f.dto()); err != nil {
				t.Fatalf("%s: expfmt: %v", f.name(), err)
			}
			if !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("%s in %s:\nours:\n%s\nexpfmt:\n%s", f.name(), format, got, want.Bytes())
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
	})
}

func utfOK(s string) bool { return strings.ToValidUTF8(s, "") == s }
