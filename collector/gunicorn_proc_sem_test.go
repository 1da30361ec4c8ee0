package collector

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wsgi-exporter/wsgi_exporter/gunicorn"
	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// stuckProcReader blocks its first Read, ignoring the context, until released.
type stuckProcReader struct {
	entered, release chan struct{}
	calls            int
}

func (f *stuckProcReader) Read(context.Context, string) (*gunicorn.Master, error) {
	f.calls++
	if f.calls == 1 {
		close(f.entered)
		<-f.release
	}
	return master(100, 101), nil
}

// TestGunicornProcScrapeQueuedGivesUp: a scrape queued behind a stuck one (which the
// collector abandoned) fails with a timeout when its context ends instead of adding a
// goroutine blocked forever; once the stuck read returns, scrapes go on.
func TestGunicornProcScrapeQueuedGivesUp(t *testing.T) {
	r := &stuckProcReader{entered: make(chan struct{}), release: make(chan struct{})}
	src := newGP("/run/g.pid", r)
	first := make(chan error, 1)
	go func() {
		err := src.Scrape(context.Background(), testWriter(src))
		first <- err
	}()
	<-r.entered
	ctx, cancel := context.WithCancel(context.Background())
	second := make(chan error, 1)
	go func() {
		err := src.Scrape(ctx, testWriter(src))
		second <- err
	}()
	cancel()
	select {
	case err := <-second:
		if fetch.ReasonOf(err) != fetch.ReasonTimeout || !errors.Is(err, context.Canceled) {
			t.Fatalf("queued scrape: %v (reason %s), want timeout", err, fetch.ReasonOf(err))
		}
	case <-time.After(time.Minute): // a hang guard, not a timing assertion
		close(r.release)
		t.Fatal("queued scrape still blocked behind the stuck one after its context ended")
	}
	close(r.release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := src.Scrape(context.Background(), testWriter(src)); err != nil {
		t.Fatal(err)
	}
	if r.calls != 2 || len(src.sem) != 0 {
		t.Fatalf("%d reads, semaphore %d; want 2 reads and a free semaphore", r.calls, len(src.sem))
	}
}
