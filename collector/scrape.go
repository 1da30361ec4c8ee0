package collector

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

var reasons = fetch.Reasons

// scrapeCollector scrapes one source for one request, or reports the failure of a glob that
// could not be expanded.
type scrapeCollector struct {
	e       *Exporter
	ctx     context.Context
	start   time.Time // when the request began: every deadline counts from here
	timeout time.Duration
	src     Source
	err     error    // set: src is an Expander whose expansion failed; report it down
	late    *lateApp // set: src is an appSource, whose metrics are built after the others'
}

// Describe sends nothing: the collector is unchecked, as the series of a source depend on
// what the target reports.
func (c *scrapeCollector) Describe(chan<- *prometheus.Desc) {}

func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	if c.err != nil {
		c.report(c.src, c.start, c.err, ch)
		return
	}
	c.scrapeOne(c.src, ch)
}

// deadline is the source's deadline, counted from the start of the request, so that time spent
// expanding globs is not granted a second time.
func (c *scrapeCollector) deadline(s Source) (context.Context, context.CancelFunc) {
	return context.WithDeadline(c.ctx, c.start.Add(sourceTimeout(s, c.timeout)))
}

// sourceTimeout is the request's timeout when positive, else the source's own, else 5 s.
func sourceTimeout(s Source, timeout time.Duration) time.Duration {
	if timeout > 0 {
		return timeout
	}
	if t := s.Config().Timeout; t > 0 {
		return t
	}
	return 5 * time.Second
}

// guarded runs fn in its own goroutine and waits for it until ctx is done. A call that
// overruns is abandoned (its late result is dropped); a panic is an error, not a crash.
func guarded[T any](ctx context.Context, what string, fn func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		defer func() {
			if p := recover(); p != nil {
				r = result{err: fmt.Errorf("panic while %s: %v", what, p)}
			}
			done <- r
		}()
		r.v, r.err = fn()
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, fetch.Errorf(fetch.ReasonTimeout, "%s: no answer within the deadline: %w", what, ctx.Err())
	}
}

// scrapeOne runs one source's Scrape under its deadline.
func (c *scrapeCollector) scrapeOne(s Source, ch chan<- prometheus.Metric) {
	start := time.Now()
	ctx, cancel := c.deadline(s)
	defer cancel()
	var (
		emit Emit
		err  error
	)
	if as, ok := s.(appSource); ok && c.late != nil {
		// Only read now; the metrics are built once every other source's are gathered.
		var app appEmit
		app, err = guarded(ctx, "scraping", func() (appEmit, error) { return as.scrapeApp(ctx) })
		if err == nil && app != nil {
			c.late.emit = app
			emit = func(chan<- prometheus.Metric) {}
		}
	} else {
		emit, err = c.limitedScrape(ctx, s)
	}
	if err == nil && emit == nil {
		err = fmt.Errorf("source returned no result")
	}
	if err == nil {
		err = safeEmit(emit, ch)
	}
	c.report(s, start, err, ch)
}

// limitedScrape runs s.Scrape under ctx once one of the source's read slots is free. A scrape
// abandoned at its deadline keeps its slot until it really returns, so a hung target cannot
// gather more than maxReadsPerSource reads.
func (c *scrapeCollector) limitedScrape(ctx context.Context, s Source) (Emit, error) {
	release, err := c.e.limits.acquire(ctx, s)
	if err != nil {
		return nil, err
	}
	return guarded(ctx, "scraping", func() (Emit, error) {
		defer release()
		return s.Scrape(ctx)
	})
}

// safeEmit runs emit, turning a panic into an error. Metrics sent before a panic stay sent.
func safeEmit(emit Emit, ch chan<- prometheus.Metric) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic while building metrics: %v", p)
		}
	}()
	emit(ch)
	return nil
}

// report sends the source's up and duration and counts a failure.
func (c *scrapeCollector) report(s Source, start time.Time, err error, ch chan<- prometheus.Metric) {
	k, name := s.Kind(), s.Config().SourceName()
	up := 1.0
	reason := ""
	if err != nil {
		up = 0
		reason = fetch.ReasonOf(err)
		c.e.errors.WithLabelValues(k.Name, name, reason).Inc()
	}
	c.e.noteResult(k.Name, name, err, reason)
	ch <- prometheus.MustNewConstMetric(upDesc(k), prometheus.GaugeValue, up, name)
	ch <- prometheus.MustNewConstMetric(c.e.duration, prometheus.GaugeValue, time.Since(start).Seconds(), k.Name, name)
}

var (
	upDescsMu sync.Mutex
	upDescs   = map[Kind]*prometheus.Desc{}
)

func upDesc(k Kind) *prometheus.Desc {
	upDescsMu.Lock()
	defer upDescsMu.Unlock()
	d, ok := upDescs[k]
	if !ok {
		d = prometheus.NewDesc(k.Name+"_up", "Whether the last scrape of the "+k.Title+" succeeded (1) or failed (0).",
			[]string{k.SourceLabel}, nil)
		upDescs[k] = d
	}
	return d
}
