package collector

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

var testKind = Kind{Name: "fake", SourceLabel: "source", Title: "fake source"}

var fakeValue = gauge(testKind, "fake_value", "A value.")

// fakeSource scrapes by calling fn; it emits fake_value{source} = value on success.
type fakeSource struct {
	cfg   Config
	value float64
	fn    func(ctx context.Context) error
}

func (f *fakeSource) Kind() Kind     { return testKind }
func (f *fakeSource) Config() Config { return f.cfg }
func (f *fakeSource) Scrape(ctx context.Context, w *Writer) error {
	if f.fn != nil {
		if err := f.fn(ctx); err != nil {
			return err
		}
	}
	w.Value(fakeValue, f.value)
	return nil
}

// globSource expands into the sources it holds.
type globSource struct {
	fakeSource
	expand []Source
	err    error
}

func (g *globSource) Expand(context.Context) ([]Source, error) { return g.expand, g.err }

func newExporter(t *testing.T, srcs ...Source) *Exporter {
	t.Helper()
	e, err := New(srcs, Options{TimeoutOffset: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// filtered drops the variable duration metric.
func gather(t *testing.T, g prometheus.Gatherer, names ...string) string {
	t.Helper()
	var b strings.Builder
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	for _, mf := range mfs {
		if !want[mf.GetName()] {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			fmt.Fprintf(&b, "%s{%s} %g\n", mf.GetName(), strings.Join(ls, ","), v)
		}
	}
	return b.String()
}

func TestOneFailingSourceDoesNotHideOthers(t *testing.T) {
	ok := &fakeSource{cfg: Config{Address: "a", Timeout: time.Second}, value: 7}
	bad := &fakeSource{cfg: Config{Address: "b", Timeout: time.Second}, fn: func(context.Context) error {
		return fetch.Errorf(fetch.ReasonConnect, "connection refused")
	}}
	e := newExporter(t, ok, bad)
	got := gather(t, e.Gatherer(context.Background(), 0), "fake_up", "fake_value")
	want := "fake_up{source=a} 1\nfake_up{source=b} 0\nfake_value{source=a} 7\n"
	if got != want {
		t.Fatalf("got\n%swant\n%s", got, want)
	}
	// Second scrape: the error counter counts per reason and every reason exists from the start.
	e.Gatherer(context.Background(), 0).Gather()
	if v := e.errorCount("fake", "b", fetch.ReasonConnect); v != 2 {
		t.Fatalf("connect errors of b = %v, want 2", v)
	}
	if v := e.errorCount("fake", "a", fetch.ReasonConnect); v != 0 {
		t.Fatalf("connect errors of a = %v, want 0", v)
	}
	if n := e.countedSources() * len(fetch.Reasons); n != 2*len(fetch.Reasons) {
		t.Fatalf("%d error series, want %d (every reason for each source)", n, 2*len(fetch.Reasons))
	}
}

func TestDeadlineFromSourceTimeout(t *testing.T) {
	var got time.Duration
	s := &fakeSource{cfg: Config{Address: "a", Timeout: 3 * time.Second}, fn: func(ctx context.Context) error {
		dl, _ := ctx.Deadline()
		got = time.Until(dl)
		return nil
	}}
	e := newExporter(t, s)
	e.Gatherer(context.Background(), 0).Gather()
	if got <= 2900*time.Millisecond || got > 3*time.Second {
		t.Fatalf("deadline %v from now, want just under 3s", got)
	}
}

func TestScrapeTimeoutHeaderSetsDeadline(t *testing.T) {
	var mu sync.Mutex
	var got time.Duration
	s := &fakeSource{cfg: Config{Address: "a", Timeout: 30 * time.Second}, fn: func(ctx context.Context) error {
		dl, _ := ctx.Deadline()
		mu.Lock()
		got = time.Until(dl)
		mu.Unlock()
		return nil
	}}
	e := newExporter(t, s)
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set(ScrapeTimeoutHeader, "2.5")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	// 2.5 s announced minus the 100 ms offset.
	if got <= 2300*time.Millisecond || got > 2400*time.Millisecond {
		t.Fatalf("deadline %v from now, want just under 2.4s", got)
	}
}

func TestRequestTimeout(t *testing.T) {
	e := newExporter(t)
	for _, c := range []struct {
		header string
		want   time.Duration
	}{
		{"", 0},
		{"10", 9900 * time.Millisecond},
		{"0.1", 50 * time.Millisecond}, // offset larger than half: keep half
		{"junk", 0},
		{"-3", 0},
		{"NaN", 0},
		{"0", 0},
		{"120", 119900 * time.Millisecond},
		{"121", 119900 * time.Millisecond}, // capped at Options.MaxTimeout
		{"86400", 119900 * time.Millisecond},
		{"1e300", 119900 * time.Millisecond},
		{"+Inf", 119900 * time.Millisecond},
	} {
		r := httptest.NewRequest("GET", "/metrics", nil)
		if c.header != "" {
			r.Header.Set(ScrapeTimeoutHeader, c.header)
		}
		if got := e.requestTimeout(r); got != c.want {
			t.Errorf("header %q: timeout %v, want %v", c.header, got, c.want)
		}
	}
}

func TestHungSourceCostsOnlyTheDeadline(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	hung := &fakeSource{cfg: Config{Address: "hung", Timeout: 200 * time.Millisecond}, fn: func(context.Context) error {
		<-release // ignores its context, like a buggy source would
		return nil
	}}
	ok := &fakeSource{cfg: Config{Address: "ok", Timeout: time.Second}, value: 1}
	e := newExporter(t, hung, ok)
	start := time.Now()
	got := gather(t, e.Gatherer(context.Background(), 0), "fake_up")
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("scrape took %v despite a 200ms deadline", el)
	}
	if got != "fake_up{source=hung} 0\nfake_up{source=ok} 1\n" {
		t.Fatalf("got\n%s", got)
	}
	if v := e.errorCount("fake", "hung", fetch.ReasonTimeout); v != 1 {
		t.Fatalf("timeout errors = %v, want 1", v)
	}
}

func TestPanickingSourceIsAFailedScrape(t *testing.T) {
	s := &fakeSource{cfg: Config{Address: "p", Timeout: time.Second}, fn: func(context.Context) error { panic("boom") }}
	e := newExporter(t, s)
	if got := gather(t, e.Gatherer(context.Background(), 0), "fake_up"); got != "fake_up{source=p} 0\n" {
		t.Fatalf("got %s", got)
	}
	if v := e.errorCount("fake", "p", fetch.ReasonOther); v != 1 {
		t.Fatalf("other errors = %v, want 1", v)
	}
}

// boundSource is a fakeSource that honours its deadline itself (deadlineBound).
type boundSource struct{ fakeSource }

func (*boundSource) boundByDeadline() bool { return true }

// A deadlineBound source is scraped on the request's goroutine (no goroutine of its own), and
// a panic in it is still a failed scrape, not a crash.
func TestDeadlineBoundSourceScrapedInline(t *testing.T) {
	var stack string
	inline := &boundSource{fakeSource{cfg: Config{Address: "in", Timeout: time.Second}, value: 3, fn: func(context.Context) error {
		buf := make([]byte, 64<<10)
		stack = string(buf[:runtime.Stack(buf, false)])
		return nil
	}}}
	e := newExporter(t, inline)
	if got := gather(t, e.Gatherer(context.Background(), 0), "fake_up", "fake_value"); got != "fake_up{source=in} 1\nfake_value{source=in} 3\n" {
		t.Fatalf("got %s", got)
	}
	if !strings.Contains(stack, "(*gathering).scrapeOne") || strings.Contains(stack, "guarded") {
		t.Fatalf("not scraped on the request's goroutine:\n%s", stack)
	}

	panicky := &boundSource{fakeSource{cfg: Config{Address: "p", Timeout: time.Second}, fn: func(context.Context) error { panic("boom") }}}
	e = newExporter(t, panicky)
	if got := gather(t, e.Gatherer(context.Background(), 0), "fake_up"); got != "fake_up{source=p} 0\n" {
		t.Fatalf("got %s", got)
	}
	if v := e.errorCount("fake", "p", fetch.ReasonOther); v != 1 {
		t.Fatalf("other errors = %v, want 1", v)
	}
}

func TestDuplicateSourceIsAnError(t *testing.T) {
	a := &fakeSource{cfg: Config{Address: "x"}}
	b := &fakeSource{cfg: Config{Address: "y", Name: "x"}}
	_, err := New([]Source{a, b}, Options{})
	if err == nil || !strings.Contains(err.Error(), `"x" is configured twice`) {
		t.Fatalf("err = %v", err)
	}
}

func TestExpanderScrapesEachTarget(t *testing.T) {
	g := &globSource{fakeSource: fakeSource{cfg: Config{Address: "g*", Timeout: time.Second}}}
	g.expand = []Source{
		&fakeSource{cfg: Config{Address: "g1", Timeout: time.Second}, value: 1},
		&fakeSource{cfg: Config{Address: "g2", Timeout: time.Second}, value: 2},
	}
	e := newExporter(t, g)
	got := gather(t, e.Gatherer(context.Background(), 0), "fake_up", "fake_value")
	want := "fake_up{source=g1} 1\nfake_up{source=g2} 1\nfake_value{source=g1} 1\nfake_value{source=g2} 2\n"
	if got != want {
		t.Fatalf("got\n%swant\n%s", got, want)
	}
	g.expand = nil
	got = gather(t, e.Gatherer(context.Background(), 0), "fake_up")
	if got != "fake_up{source=g*} 0\n" {
		t.Fatalf("empty glob: got\n%s", got)
	}
	g.err = errors.New("bad pattern")
	if got = gather(t, e.Gatherer(context.Background(), 0), "fake_up"); got != "fake_up{source=g*} 0\n" {
		t.Fatalf("failing glob: got\n%s", got)
	}
	if v := e.errorCount("fake", "g*", fetch.ReasonNotFound); v != 1 {
		t.Fatalf("not_found errors of the glob = %v, want 1 (the empty expansion)", v)
	}
	if v := e.errorCount("fake", "g*", fetch.ReasonOther); v != 1 {
		t.Fatalf("other errors of the glob = %v, want 1 (the failing expansion)", v)
	}
}

func TestConfigLabelsAreAdded(t *testing.T) {
	s := &fakeSource{cfg: Config{Address: "a", Timeout: time.Second, Labels: map[string]string{"env": "prod"}}, value: 3}
	e := newExporter(t, s)
	got := gather(t, e.Gatherer(context.Background(), 0), "fake_up", "fake_value")
	want := "fake_up{env=prod,source=a} 1\nfake_value{env=prod,source=a} 3\n"
	if got != want {
		t.Fatalf("got\n%swant\n%s", got, want)
	}
}

func TestConcurrentScrapesAreIsolated(t *testing.T) {
	var mu sync.Mutex
	n := 0
	s := &fakeSource{cfg: Config{Address: "a", Timeout: time.Second}, fn: func(context.Context) error {
		mu.Lock()
		n++
		mu.Unlock()
		time.Sleep(10 * time.Millisecond)
		return nil
	}, value: 5}
	e := newExporter(t, s)
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			resp, err := http.Get(srv.URL)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("status %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if n != 8 {
		t.Fatalf("%d scrapes of the source for 8 requests", n)
	}
}

// Constant labels are checked when the exporter is built: a label the kind's series already
// carry, an invalid name or a value that is not UTF-8 is an error; a good one is on every
// series of the source, its up and duration included.
func TestConstantLabelsChecked(t *testing.T) {
	addr := uwsgiFixtureAddr(t, "tcp_4workers_cache_idle.json")
	for labels, want := range map[string]map[string]string{
		"already a label": {"worker_id": "x"},
		"source label":    {"stats_uri": "x"},
		"core label":      {"kind": "x"},
		"invalid name":    {"__x": "y"},
		"not UTF-8":       {"env": "\xff"},
	} {
		src, err := NewUWSGI(Config{Address: addr, Labels: want}, UWSGIOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := New([]Source{src}, Options{}); err == nil {
			t.Errorf("%s: %v accepted", labels, want)
		}
	}
	src, err := NewUWSGI(Config{Address: addr, Name: "u", Labels: map[string]string{"env": "prod"}}, UWSGIOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mfs, err := newExporter(t, src).Gatherer(context.Background(), 0).Gather()
	if err != nil {
		t.Fatal(err)
	}
	checkFamilies(t, mfs)
	n := 0
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "uwsgi_") && mf.GetName() != "wsgi_exporter_scrape_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			n++
			if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == "env" && l.GetValue() == "prod" }) {
				t.Fatalf("%s: %v", mf.GetName(), m.GetLabel())
			}
		}
	}
	if n < 50 {
		t.Fatalf("%d series", n)
	}
	if _, err := NewUWSGI(Config{Kind: "nginx", Address: addr}, UWSGIOptions{}); err == nil {
		t.Error("a Config of kind nginx built a uWSGI source")
	}
}

// countingCollector counts its collections and reports the count.
type countingCollector struct{ n atomic.Int64 }

var countingDesc = prometheus.NewDesc("test_self_collections", "Collections.", nil, nil)

func (c *countingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- countingDesc }
func (c *countingCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(countingDesc, prometheus.GaugeValue, float64(c.n.Add(1)))
}

// The exporter's own collectors (RegisterSelf) are gathered at most once per
// SelfMetricsMaxAge, and for every answer with 0; the registry's are gathered for every answer.
func TestSelfMetricsMaxAge(t *testing.T) {
	for _, c := range []struct {
		age  time.Duration
		want int64
	}{{0, 3}, {time.Hour, 1}} {
		self, fresh := &countingCollector{}, &countingCollector{}
		e, err := New(nil, Options{SelfMetricsMaxAge: c.age})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.RegisterSelf(self); err != nil {
			t.Fatal(err)
		}
		e.Registry().MustRegister(prometheus.WrapCollectorWithPrefix("fresh_", fresh))
		for range 3 {
			mfs, err := e.Gatherer(context.Background(), 0).Gather()
			if err != nil {
				t.Fatal(err)
			}
			if findFamily(mfs, "test_self_collections") == nil || findFamily(mfs, "fresh_test_self_collections") == nil {
				t.Fatalf("age %v: families missing", c.age)
			}
		}
		if self.n.Load() != c.want || fresh.n.Load() != 3 {
			t.Errorf("age %v: self gathered %d times, fresh %d; want %d and 3", c.age, self.n.Load(), fresh.n.Load(), c.want)
		}
	}
	e, err := New(nil, Options{SelfMetricsMaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.RegisterSelf(&countingCollector{}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	e.self.gather(now)
	first := e.self.fams
	if e.self.gather(now.Add(59 * time.Minute)); &e.self.fams[0] != &first[0] {
		t.Error("gathered again within the max age")
	}
	if e.self.gather(now.Add(61 * time.Minute)); &e.self.fams[0] == &first[0] {
		t.Error("not gathered again after the max age")
	}
	second := e.self.fams
	e.RefreshSelf()
	if e.self.gather(now.Add(62 * time.Minute)); &e.self.fams[0] == &second[0] {
		t.Error("not gathered again after RefreshSelf")
	}
}

// RegisterShared's collectors are gathered once and then only after RefreshSelf, whatever the
// max age: their values change only together with it.
func TestRegisterSharedUntilRefresh(t *testing.T) {
	shared := &countingCollector{}
	e, err := New(nil, Options{SelfMetricsMaxAge: 0})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.RegisterShared(shared); err != nil {
		t.Fatal(err)
	}
	value := func() float64 {
		mfs, err := e.Gatherer(context.Background(), 0).Gather()
		if err != nil {
			t.Fatal(err)
		}
		f := findFamily(mfs, "test_self_collections")
		if f == nil {
			t.Fatal("family missing")
		}
		return f.Metric[0].GetGauge().GetValue()
	}
	for range 3 {
		if v := value(); v != 1 {
			t.Fatalf("value %v, want 1 (gathered once)", v)
		}
	}
	e.RefreshSelf()
	if v := value(); v != 2 || shared.n.Load() != 2 {
		t.Fatalf("after RefreshSelf: value %v, gathered %d times; want 2 and 2", v, shared.n.Load())
	}
}

// SelfMetrics reads the process again for every answer with a max age of 0, and at most once
// per max age otherwise: the bytes allocated in between show, or do not.
func TestSelfMetricsWriterMaxAge(t *testing.T) {
	for _, c := range []struct {
		age  time.Duration
		same bool
	}{{0, false}, {time.Hour, true}} {
		e, err := New(nil, Options{Self: NewSelfMetrics(), SelfMetricsMaxAge: c.age})
		if err != nil {
			t.Fatal(err)
		}
		alloc := func() float64 {
			mfs, err := e.Gatherer(context.Background(), 0).Gather()
			if err != nil {
				t.Fatal(err)
			}
			return findFamily(mfs, "go_memstats_alloc_bytes_total").Metric[0].GetCounter().GetValue()
		}
		a := alloc()
		sink = make([]byte, 1<<20)
		if b := alloc(); (a == b) != c.same {
			t.Errorf("max age %v: go_memstats_alloc_bytes_total %v then %v", c.age, a, b)
		}
	}
}

var sink []byte
