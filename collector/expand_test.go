package collector

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// funcGlob expands by calling fn.
type funcGlob struct {
	fakeSource
	fn func(ctx context.Context) ([]Source, error)
}

func (g *funcGlob) Expand(ctx context.Context) ([]Source, error) { return g.fn(ctx) }

func fake(addr string, v float64) *fakeSource {
	return &fakeSource{cfg: Config{Address: addr, Timeout: time.Second}, value: v}
}

// A target named by an explicit source and matched by a glob, or matched by two globs, is
// scraped once: a duplicate series would make the gather fail for that family.
func TestOverlappingGlobsScrapeOnce(t *testing.T) {
	g1 := &globSource{fakeSource: *fake("d/*", 0), expand: []Source{fake("d/a", 1), fake("d/b", 2)}}
	g2 := &globSource{fakeSource: *fake("d/?", 0), expand: []Source{fake("d/a", 1), fake("d/b", 2)}}
	e := newExporter(t, fake("d/a", 1), g1, g2)
	got := gather(t, e.Gatherer(context.Background(), 0), "fake_up", "fake_value") // fails on duplicates
	want := "fake_up{source=d/a} 1\nfake_up{source=d/b} 1\nfake_value{source=d/a} 1\nfake_value{source=d/b} 2\n"
	if got != want {
		t.Fatalf("got\n%swant\n%s", got, want)
	}
}

// Targets that vanish from a glob lose their error counters; the others keep theirs.
func TestVanishedGlobTargetsAreForgotten(t *testing.T) {
	bad := fake("v/b", 0)
	bad.fn = func(context.Context) error { return fetch.Errorf(fetch.ReasonConnect, "refused") }
	g := &globSource{fakeSource: *fake("v/*", 0), expand: []Source{fake("v/a", 1), bad}}
	e := newExporter(t, g)
	gather(t, e.Gatherer(context.Background(), 0))
	if v := e.errorCount("fake", "v/b", fetch.ReasonConnect); v != 1 {
		t.Fatalf("connect errors of v/b = %v, want 1", v)
	}
	g.expand = []Source{fake("v/a", 1)}
	gather(t, e.Gatherer(context.Background(), 0))
	if n := e.countedSources() * len(fetch.Reasons); n != 2*len(fetch.Reasons) {
		t.Fatalf("%d error series, want %d (the glob's and v/a's)", n, 2*len(fetch.Reasons))
	}
	e.mu.Lock()
	_, known := e.status["fake\x00v/b"]
	e.mu.Unlock()
	if known {
		t.Fatal("the vanished target's status is kept")
	}
	if n := e.countedSources() * len(DropReasons); n != 2*len(DropReasons) {
		t.Fatalf("%d dropped-series counters, want %d (the glob's and v/a's)", n, 2*len(DropReasons))
	}
	// A failed expansion forgets nothing.
	g.expand, g.err = nil, fetch.Errorf(fetch.ReasonPermission, "denied")
	gather(t, e.Gatherer(context.Background(), 0))
	if n := e.countedSources() * len(fetch.Reasons); n != 2*len(fetch.Reasons) {
		t.Fatalf("%d error series after a failed expansion, want %d", n, 2*len(fetch.Reasons))
	}
}

// A glob that hangs costs the deadline once: the request answers with the glob down
// (timeout), and while the hung expansion still runs, later requests fail fast.
func TestHungExpansion(t *testing.T) {
	release := make(chan struct{})
	g := &funcGlob{fakeSource: *fake("h/*", 0), fn: func(context.Context) ([]Source, error) {
		<-release // ignores its context, like a hung filesystem
		return []Source{fake("h/a", 1)}, nil
	}}
	g.cfg.Timeout = 50 * time.Millisecond
	e := newExporter(t, g, fake("other", 7))
	got := gather(t, e.Gatherer(context.Background(), 0), "fake_up", "fake_value")
	if got != "fake_up{source=h/*} 0\nfake_up{source=other} 1\nfake_value{source=other} 7\n" {
		t.Fatalf("got\n%s", got)
	}
	if v := e.errorCount("fake", "h/*", fetch.ReasonTimeout); v != 1 {
		t.Fatalf("timeouts = %v, want 1", v)
	}
	got = gather(t, e.Gatherer(context.Background(), 0), "fake_up")
	if !strings.Contains(got, "fake_up{source=h/*} 0") {
		t.Fatalf("while still hung: got\n%s", got)
	}
	if v := e.errorCount("fake", "h/*", fetch.ReasonTimeout); v != 2 {
		t.Fatalf("timeouts = %v, want 2", v)
	}
	close(release)
	// Once the expansion returns, the glob is expanded again.
	deadline := time.Now().Add(10 * time.Second)
	for e.globs[0].busy.Load() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	got = gather(t, e.Gatherer(context.Background(), 0), "fake_up")
	if got != "fake_up{source=h/a} 1\nfake_up{source=other} 1\n" {
		t.Fatalf("after release: got\n%s", got)
	}
}

// Time spent expanding is taken from the targets' deadline, not granted again.
func TestExpansionTimeCountsAgainstDeadline(t *testing.T) {
	var left time.Duration
	target := fake("s/a", 1)
	target.fn = func(ctx context.Context) error {
		dl, _ := ctx.Deadline()
		left = time.Until(dl)
		return nil
	}
	g := &funcGlob{fakeSource: *fake("s/*", 0), fn: func(context.Context) ([]Source, error) {
		time.Sleep(300 * time.Millisecond)
		return []Source{target}, nil
	}}
	e := newExporter(t, g)
	gather(t, e.Gatherer(context.Background(), time.Second))
	if left > 750*time.Millisecond {
		t.Fatalf("the target had %v left of a 1s deadline after a 300ms expansion", left)
	}
}

// Requests beyond MaxRequestsInFlight are refused with 503 while the others are served; the
// limit is shared by all requests (each gets its own Gatherer).
func TestMaxRequestsInFlight(t *testing.T) {
	entered := make(chan struct{}, 4)
	release := make(chan struct{})
	s := fake("slow", 1)
	s.fn = func(context.Context) error {
		entered <- struct{}{}
		<-release
		return nil
	}
	s.cfg.Timeout = time.Minute
	e, err := New([]Source{s}, Options{MaxRequestsInFlight: 2})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	codes := make(chan int, 2)
	for range 2 {
		go func() {
			resp, err := http.Get(srv.URL)
			if err != nil {
				codes <- -1
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	<-entered
	<-entered // both requests are inside the source now
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third request: status %d, want 503", resp.StatusCode)
	}
	close(release)
	for range 2 {
		if c := <-codes; c != 200 {
			t.Fatalf("a request within the limit got %d", c)
		}
	}
	resp, err = http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("after the others finished: status %d", resp.StatusCode)
	}
}
