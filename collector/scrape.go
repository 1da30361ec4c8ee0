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

// scrapeCollector scrapes one configured source (and what it expands to) for one request.
type scrapeCollector struct {
	e       *Exporter
	ctx     context.Context
	timeout time.Duration
	src     Source
}

// Describe sends nothing: the collector is unchecked, as the series of a source depend on
// what the target reports.
func (c *scrapeCollector) Describe(chan<- *prometheus.Desc) {}

func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	x, ok := c.src.(Expander)
	if !ok {
		c.scrapeOne(c.src, ch)
		return
	}
	ctx, cancel := c.deadline(c.src)
	srcs, err := x.Expand(ctx)
	cancel()
	if err == nil && len(srcs) == 0 {
		err = fetch.Errorf(fetch.ReasonNotFound, "%s matches nothing", c.src.Config().Address)
	}
	if err != nil {
		c.report(c.src, time.Now(), err, ch)
		return
	}
	var wg sync.WaitGroup
	for _, s := range srcs {
		c.e.initErrors(s)
		wg.Go(func() { c.scrapeOne(s, ch) })
	}
	wg.Wait()
}

func (c *scrapeCollector) deadline(s Source) (context.Context, context.CancelFunc) {
	t := c.timeout
	if t <= 0 {
		t = s.Config().Timeout
	}
	if t <= 0 {
		t = 5 * time.Second
	}
	return context.WithTimeout(c.ctx, t)
}

type result struct {
	emit Emit
	err  error
}

// scrapeOne runs one source's Scrape under its deadline. A source that overruns the deadline
// is abandoned (its late result is dropped); a panic is a failed scrape, not a crash.
func (c *scrapeCollector) scrapeOne(s Source, ch chan<- prometheus.Metric) {
	start := time.Now()
	ctx, cancel := c.deadline(s)
	defer cancel()
	done := make(chan result, 1)
	go func() {
		var r result
		defer func() {
			if p := recover(); p != nil {
				r = result{err: fmt.Errorf("panic while scraping: %v", p)}
			}
			done <- r
		}()
		r.emit, r.err = s.Scrape(ctx)
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		r.err = fetch.Errorf(fetch.ReasonTimeout, "no answer within the deadline: %w", ctx.Err())
	}
	if r.err == nil && r.emit == nil {
		r.err = fmt.Errorf("source returned no result")
	}
	if r.err == nil {
		r.err = safeEmit(r.emit, ch)
	}
	c.report(s, start, r.err, ch)
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
