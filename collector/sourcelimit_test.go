package collector

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// Concurrent requests each read the source, never more than maxReadsPerSource at once, but
// more than one: 12 requests of 20 ms each overlap.
func TestReadsPerSourceAreBounded(t *testing.T) {
	var mu sync.Mutex
	running, most, total := 0, 0, 0
	s := &fakeSource{cfg: Config{Address: "a", Timeout: 5 * time.Second}, fn: func(context.Context) error {
		mu.Lock()
		running++
		total++
		most = max(most, running)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		running--
		mu.Unlock()
		return nil
	}, value: 5}
	other := &fakeSource{cfg: Config{Address: "b", Timeout: 5 * time.Second}, value: 6}
	e := newExporter(t, s, other)
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() {
			resp, err := http.Get(srv.URL)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		})
	}
	wg.Wait()
	if total != 12 || most > maxReadsPerSource || most < 2 {
		t.Fatalf("%d reads for 12 requests, at most %d at once; want 12 and %d", total, most, maxReadsPerSource)
	}
	if n := len(e.limits.slots); n != 0 {
		t.Fatalf("%d semaphores left after the requests", n)
	}
}

// Requests beyond the slots of a hung source wait only until their deadline (reason timeout),
// while its other sources and its first reads are served as usual.
func TestHungSourceHoldsOnlyItsSlots(t *testing.T) {
	unblock := make(chan struct{})
	var mu sync.Mutex
	started := 0
	hung := &fakeSource{cfg: Config{Address: "hung"}, fn: func(ctx context.Context) error {
		mu.Lock()
		started++
		mu.Unlock()
		<-unblock // ignores ctx: its reads keep their slots
		return nil
	}}
	healthy := &fakeSource{cfg: Config{Address: "ok"}, value: 1}
	e := newExporter(t, hung, healthy)
	defer close(unblock)
	for i := 1; i <= maxReadsPerSource+2; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		got := gather(t, e.Gatherer(ctx, 100*time.Millisecond), "fake_up", "fake_value")
		cancel()
		if want := "fake_up{source=hung} 0\nfake_up{source=ok} 1\nfake_value{source=ok} 1\n"; got != want {
			t.Fatalf("request %d:\n%s\nwant:\n%s", i, got, want)
		}
	}
	if got := e.errorCount("fake", "hung", fetch.ReasonTimeout); got != maxReadsPerSource+2 {
		t.Fatalf("timeouts %v", got)
	}
	mu.Lock()
	n := started
	mu.Unlock()
	if n != maxReadsPerSource {
		t.Fatalf("%d reads of the hung source started, want %d", n, maxReadsPerSource)
	}
}
