package collector

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// findFamily returns the family called name, or nil.
func findFamily(mfs []*dto.MetricFamily, name string) *dto.MetricFamily {
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf
		}
	}
	return nil
}

// droppedFor returns multiproc_entries_dropped_total for one directory and reason.
func droppedFor(t *testing.T, mfs []*dto.MetricFamily, dir, reason string) float64 {
	t.Helper()
	mf := findFamily(mfs, "multiproc_entries_dropped_total")
	for _, m := range mf.GetMetric() {
		var d, r string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "multiproc_dir":
				d = l.GetValue()
			case "reason":
				r = l.GetValue()
			}
		}
		if d == dir && r == reason {
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no multiproc_entries_dropped_total{multiproc_dir=%q,reason=%q}", dir, reason)
	return 0
}

// An application family named like one of the exporter's own (another source's series, the
// Go collector's, a summary's _count) never replaces it: the application's is dropped and
// counted, at every scrape, whatever order the sources finish in.
func TestApplicationNamesNeverHideTheExporters(t *testing.T) {
	dir := t.TempDir()
	mpWriteDB(t, dir, "gauge_livesum_1.db",
		mpEntry{`["fake_value", "fake_value", {}, "The application's."]`, 99},
		mpEntry{`["fake_up", "fake_up", {}, "The application's."]`, 98},
		mpEntry{`["go_goroutines", "go_goroutines", {}, "The application's."]`, 97},
		mpEntry{`["go_gc_duration_seconds_count", "go_gc_duration_seconds_count", {}, "The application's."]`, 96},
		mpEntry{`["app_ok", "app_ok", {}, "Fine."]`, 1})
	// The Go metrics from a registry, and from SelfMetrics, as main serves them.
	for _, viaSelf := range []bool{false, true} {
		own := &fakeSource{cfg: Config{Address: "x"}, value: 7}
		var e *Exporter
		if viaSelf {
			var err error
			if e, err = New([]Source{own, newMP(dir, MultiprocOptions{})}, Options{Self: NewSelfMetrics()}); err != nil {
				t.Fatal(err)
			}
		} else {
			e = mpExporter(t, own, newMP(dir, MultiprocOptions{}))
			e.Registry().MustRegister(collectors.NewGoCollector())
		}
		checkAppNamesNeverHide(t, e, dir)
	}
}

func checkAppNamesNeverHide(t *testing.T, e *Exporter, dir string) {
	t.Helper()
	for i := 1; i <= 20; i++ {
		mfs, err := e.Gatherer(t.Context(), 5*time.Second).Gather()
		if err != nil {
			t.Fatalf("scrape %d: gather error: %v", i, err)
		}
		if got := gather(t, staticGatherer(mfs), "fake_value", "fake_up", "app_ok", "go_gc_duration_seconds_count"); got !=
			"app_ok{} 1\nfake_up{source=x} 1\nfake_value{source=x} 7\n" {
			t.Fatalf("scrape %d:\n%s", i, got)
		}
		if g := findFamily(mfs, "go_goroutines"); g.GetHelp() == "The application's." || len(g.GetMetric()) != 1 {
			t.Fatalf("scrape %d: go_goroutines is the application's: %v", i, g)
		}
		if s := findFamily(mfs, "go_gc_duration_seconds"); s.GetType() != dto.MetricType_SUMMARY {
			t.Fatalf("scrape %d: go_gc_duration_seconds: %v", i, s)
		}
		if got := droppedFor(t, mfs, dir, mpReasonNameConflict); got != float64(4*i) {
			t.Fatalf("scrape %d: name_conflict %v, want %d", i, got, 4*i)
		}
	}
}

// Two directories without the multiproc_dir label that hold one family: the first directory
// configured is served, the later one's family is dropped and counted, every time. With the
// label, two directories that disagree on a family's help keep the first's as well.
func TestApplicationNamesFirstDirectoryWins(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	mpWriteDB(t, a, "counter_1.db", mpEntry{`["hits", "hits_total", {}, "Hits."]`, 5})
	mpWriteDB(t, b, "counter_1.db", mpEntry{`["hits", "hits_total", {}, "Hits."]`, 1000},
		mpEntry{`["other", "other_total", {}, "Other."]`, 3})
	for _, label := range []bool{false, true} {
		mk := func(dir string) Source {
			return newMP(dir, MultiprocOptions{DirLabel: label})
		}
		e := mpExporter(t, mk(a), mk(b))
		for i := 1; i <= 30; i++ {
			mfs, err := e.Gatherer(t.Context(), 5*time.Second).Gather()
			if err != nil {
				t.Fatalf("label %v, scrape %d: gather error: %v", label, i, err)
			}
			got := gather(t, staticGatherer(mfs), "hits_total", "other_total")
			want := "hits_total{} 5\nother_total{} 3\n"
			conflicts := float64(i)
			if label {
				want = "hits_total{multiproc_dir=" + a + "} 5\nhits_total{multiproc_dir=" + b + "} 1000\nother_total{multiproc_dir=" + b + "} 3\n"
				conflicts = 0
			}
			if got != want {
				t.Fatalf("label %v, scrape %d:\n%s\nwant:\n%s", label, i, got, want)
			}
			if n := droppedFor(t, mfs, b, mpReasonNameConflict); n != conflicts {
				t.Fatalf("label %v, scrape %d: name_conflict of the second directory %v, want %v", label, i, n, conflicts)
			}
			if n := droppedFor(t, mfs, a, mpReasonNameConflict); n != 0 {
				t.Fatalf("label %v: the first directory lost %v series", label, n)
			}
		}
	}

	// With the label, a family the two directories describe differently: the first's wins.
	mpWriteDB(t, b, "counter_1.db", mpEntry{`["hits", "hits_total", {}, "Other help."]`, 1000})
	e := mpExporter(t,
		newMP(a, MultiprocOptions{DirLabel: true}),
		newMP(b, MultiprocOptions{DirLabel: true}))
	for i := 1; i <= 10; i++ {
		mfs, err := e.Gatherer(t.Context(), 5*time.Second).Gather()
		if err != nil {
			t.Fatalf("help mismatch, scrape %d: %v", i, err)
		}
		if got := gather(t, staticGatherer(mfs), "hits_total"); got != "hits_total{multiproc_dir="+a+"} 5\n" {
			t.Fatalf("help mismatch, scrape %d:\n%s", i, got)
		}
	}
}

// staticGatherer serves families already gathered.
type staticGatherer []*dto.MetricFamily

func (s staticGatherer) Gather() ([]*dto.MetricFamily, error) { return s, nil }

// A family takes the names of its series and its OpenMetrics family name: a histogram's
// _bucket, a counter's name without _total. An application family that would share one with
// the exporter's or an earlier directory's is dropped.
func TestApplicationNamesOccupiedNames(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	mpWriteDB(t, a, "histogram_1.db",
		mpEntry{`["lat", "lat_bucket", {"le": "1.0"}, "Latency."]`, 2},
		mpEntry{`["lat", "lat_bucket", {"le": "+Inf"}, "Latency."]`, 3},
		mpEntry{`["lat", "lat_sum", {}, "Latency."]`, 1.5})
	mpWriteDB(t, b, "gauge_livesum_1.db",
		mpEntry{`["lat_bucket", "lat_bucket", {}, "Not a histogram."]`, 9},
		mpEntry{`["wsgi_exporter_scrape_errors", "wsgi_exporter_scrape_errors", {}, "Clashes with the counter's family name."]`, 9},
		mpEntry{`["kept", "kept", {}, "Fine."]`, 4})
	mpWriteDB(t, b, "counter_1.db",
		mpEntry{`["fake_value", "fake_value_total", {}, "Its family name is the exporter's gauge."]`, 9})
	mk := func(dir string) Source {
		return newMP(dir, MultiprocOptions{DirLabel: true})
	}
	e := mpExporter(t, &fakeSource{cfg: Config{Address: "x"}, value: 7}, mk(a), mk(b))
	for i := 1; i <= 5; i++ {
		mfs, err := e.Gatherer(t.Context(), 5*time.Second).Gather()
		if err != nil {
			t.Fatalf("scrape %d: %v", i, err)
		}
		for _, n := range []string{"lat_bucket", "wsgi_exporter_scrape_errors", "fake_value_total"} {
			if f := findFamily(mfs, n); f != nil {
				t.Fatalf("scrape %d: %s served: %v", i, n, f)
			}
		}
		if f := findFamily(mfs, "lat"); f.GetType() != dto.MetricType_HISTOGRAM || f.GetMetric()[0].GetHistogram().GetSampleCount() != 5 { // per-bucket counts 2 + 3
			t.Fatalf("scrape %d: lat: %v", i, f)
		}
		if got := gather(t, staticGatherer(mfs), "kept", "fake_value"); got != "fake_value{source=x} 7\nkept{multiproc_dir="+b+"} 4\n" {
			t.Fatalf("scrape %d:\n%s", i, got)
		}
		if n := droppedFor(t, mfs, b, mpReasonNameConflict); n != float64(3*i) {
			t.Fatalf("scrape %d: name_conflict %v, want %d", i, n, 3*i)
		}
	}
}

// A name the exporter has served stays reserved when the source that serves it goes down, so
// the application's family does not take its place on and off.
func TestApplicationNamesStayReserved(t *testing.T) {
	dir := t.TempDir()
	mpWriteDB(t, dir, "gauge_livesum_1.db", mpEntry{`["fake_value", "fake_value", {}, "The application's."]`, 99})
	down := false
	src := &fakeSource{cfg: Config{Address: "x"}, value: 7, fn: func(context.Context) error {
		if down {
			return errors.New("down")
		}
		return nil
	}}
	e := mpExporter(t, src, newMP(dir, MultiprocOptions{}))
	for i, want := range []string{"fake_value{source=x} 7\n", "", "", "fake_value{source=x} 7\n"} {
		down = i == 1 || i == 2
		mfs, err := e.Gatherer(t.Context(), 5*time.Second).Gather()
		if err != nil {
			t.Fatalf("scrape %d: %v", i, err)
		}
		if got := gather(t, staticGatherer(mfs), "fake_value"); got != want {
			t.Fatalf("scrape %d (source down: %v):\n%s\nwant:\n%s", i, down, got, want)
		}
	}
}

// panicApp is an application source whose metrics cannot be built.
type panicApp struct{ fakeSource }

func (p *panicApp) scrapeApp(context.Context) (appEmit, error) {
	return func(*Writer, *nameClaims) { panic("broken") }, nil
}

// A failure while building an application source's metrics is an error of the answer, counted
// with reason other, and the other sources are served.
func TestApplicationEmitPanic(t *testing.T) {
	p := &panicApp{fakeSource{cfg: Config{Address: "p"}}}
	e := mpExporter(t, p, &fakeSource{cfg: Config{Address: "x"}, value: 7})
	mfs, err := e.Gatherer(t.Context(), 5*time.Second).Gather()
	if err == nil || !strings.Contains(err.Error(), "panic while building metrics: broken") {
		t.Fatalf("err = %v", err)
	}
	if got := gather(t, staticGatherer(mfs), "fake_value"); got != "fake_value{source=x} 7\n" {
		t.Fatalf("other source:\n%s", got)
	}
	if got := e.errorCount("fake", "p", fetch.ReasonOther); got != 1 {
		t.Fatalf("errors{reason=other} = %v", got)
	}
}
