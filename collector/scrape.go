package collector

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

var reasons = fetch.Reasons

// The core's families: the scrape duration of every source, and each kind's <kind>_up
// (upFamily).
var scrapeDuration = gauge(Kind{}, "wsgi_exporter_scrape_duration_seconds", "How long the last scrape of a source took.", "kind", "source")

var upFamilies sync.Map // kind name -> *Family

// upFamily returns <kind>_up, the gauge every source of kind k reports at every scrape.
func upFamily(k Kind) *Family {
	if f, ok := upFamilies.Load(k.Name); ok {
		return f.(*Family)
	}
	upFamiliesMu.Lock()
	defer upFamiliesMu.Unlock()
	if f, ok := upFamilies.Load(k.Name); ok {
		return f.(*Family)
	}
	f := gauge(k, k.Name+"_up", "Whether the last scrape of the "+k.Title+" succeeded (1) or failed (0).")
	upFamilies.Store(k.Name, f)
	return f
}

var upFamiliesMu sync.Mutex

// defaultSourceTimeout is the deadline of a source whose Config has no Timeout.
const defaultSourceTimeout = 5 * time.Second

// sourceTimeout is the request's timeout when positive, else the source's own, else
// defaultSourceTimeout.
func sourceTimeout(s Source, timeout time.Duration) time.Duration {
	if timeout > 0 {
		return timeout
	}
	if t := s.Config().Timeout; t > 0 {
		return t
	}
	return defaultSourceTimeout
}

// errAbandoned marks a call that guarded stopped waiting for.
var errAbandoned = errors.New("no answer within the deadline")

// guarded runs fn in its own goroutine and waits for it until ctx is done. A call that
// overruns is abandoned (its late result is dropped; the error wraps errAbandoned); a panic
// is an error, not a crash.
func guarded[T any](ctx context.Context, what string, fn func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		defer func() { done <- r }()
		r.v, r.err = recovered(what, fn)
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, fetch.Errorf(fetch.ReasonTimeout, "%s: %w: %w", what, errAbandoned, ctx.Err())
	}
}

// recovered calls fn, turning a panic into an error.
func recovered[T any](what string, fn func() (T, error)) (v T, err error) {
	defer func() {
		if p := recover(); p != nil {
			var zero T
			v, err = zero, fmt.Errorf("panic while %s: %v", what, p)
		}
	}()
	return fn()
}

// deadlineBound is a Source that may return by its context's deadline (or cancellation) on
// its own. When boundByDeadline reports true, every wait of its Scrape is on a socket whose
// deadline is the context's, or on nothing (statsd's counts in memory), and its translation
// stops at the Writer's deadline: it is scraped on the request's goroutine rather than under
// guarded, which saves a goroutine and two hand-offs between threads per scrape
// (docs/benchmarks.md, "Inline scrapes and one thread"). A source that resolves a path (a unix
// socket's connect, a file), reads /proc or a file system (gunicorn, multiprocess
// directories) stays under guarded: the kernel can hold such a call past any deadline (a hung
// network file system, a stuck process's memory lock).
type deadlineBound interface {
	Source
	boundByDeadline() bool
}

// limitedScrape runs s.Scrape under ctx once one of the source's read slots is free. A scrape
// abandoned at its deadline keeps its slot until it really returns, so a hung target cannot
// gather more than maxReadsPerSource reads; its Writer then belongs to it (the error wraps
// errAbandoned). A deadlineBound source is scraped on the caller's goroutine when it can be.
func (e *Exporter) limitedScrape(ctx context.Context, s Source, w *Writer) error {
	release, err := e.limits.acquire(ctx, s)
	if err != nil {
		return err
	}
	if b, ok := s.(deadlineBound); ok && b.boundByDeadline() {
		defer release()
		_, err = recovered("scraping", func() (struct{}, error) { return struct{}{}, s.Scrape(ctx, w) })
		return err
	}
	_, err = guarded(ctx, "scraping", func() (struct{}, error) {
		defer release()
		return struct{}{}, s.Scrape(ctx, w)
	})
	return err
}

// scrapeOne scrapes one planned source for request g and returns its output: its series, up
// and duration, or for an application source what to build once the others are done.
func (g *gathering) scrapeOne(p planned) *sourceOut {
	s := p.src
	deadline := g.start.Add(sourceTimeout(s, g.timeout))
	ctx, cancel := context.WithDeadline(g.ctx, deadline)
	defer cancel()
	start := time.Now()
	out := &sourceOut{src: s, deadline: deadline, start: start, w: g.newWriter(s, p.consts, deadline)}
	err := p.err
	if err == nil {
		if as, ok := s.(appSource); ok {
			out.late, err = guarded(ctx, "scraping", func() (appEmit, error) { return as.scrapeApp(ctx) })
			if err == nil && out.late == nil {
				err = fmt.Errorf("source returned no result")
			}
			if err == nil {
				out.took = time.Since(start)
				return out // reported once its series are built (gathering.late)
			}
		} else {
			err = g.e.limitedScrape(ctx, s, out.w)
			if errors.Is(err, errAbandoned) {
				out.w = g.newWriter(s, p.consts, deadline) // the abandoned scrape keeps the old one
			} else if err == nil {
				err = out.w.err
			}
		}
	}
	out.took = time.Since(start)
	g.report(out, err)
	return out
}

// report ends a source's part of the request: its up and duration are written, a failure
// discards its series and is counted and logged, and its status is updated. A failure caused
// by the scraper hanging up (the request's context ended before the source's deadline) is
// none of the source's doing: it is neither counted nor logged above debug level.
func (g *gathering) report(out *sourceOut, err error) {
	s, w := out.src, out.w
	k, name := s.Kind(), s.Config().SourceName()
	up := 1.0
	if err != nil {
		up = 0
		w.discard()
		if g.ctx.Err() != nil && fetch.ReasonOf(err) == fetch.ReasonTimeout && time.Now().Before(out.deadline) {
			g.e.logger.Debug("scrape abandoned: the scraper went away", "kind", k.Name, "source", name, "err", err)
		} else {
			g.e.noteResult(s, out, err)
		}
	} else {
		g.e.noteResult(s, out, nil)
	}
	w.core(upFamily(k), up)
	w.core(scrapeDuration, out.took.Seconds(), k.Name, name)
}
