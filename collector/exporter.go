package collector

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ScrapeTimeoutHeader is the header in which Prometheus sends its scrape timeout.
const ScrapeTimeoutHeader = "X-Prometheus-Scrape-Timeout-Seconds"

// Options tune an Exporter.
type Options struct {
	Logger *slog.Logger
	// TimeoutOffset is taken off the scrape timeout Prometheus announces, so that the answer
	// is sent before Prometheus gives up.
	TimeoutOffset time.Duration
	// MaxTimeout caps the scrape timeout a request announces, so that a hung source holds a
	// request (and its slot of the in-flight limit) at most that long. 0 means DefaultMaxTimeout.
	MaxTimeout time.Duration
}

// DefaultMaxTimeout is the default cap on the scrape timeout a request may announce.
const DefaultMaxTimeout = 2 * time.Minute

// Exporter scrapes every configured source at each request and serves the result.
type Exporter struct {
	sources []Source
	opts    Options
	logger  *slog.Logger

	registry *prometheus.Registry // long-lived metrics: errors, build info, process
	errors   *prometheus.CounterVec
	duration *prometheus.Desc

	globs []*globState // per source; nil unless it is an Expander

	mu     sync.Mutex
	down   map[string]bool // by kind+source: was the last scrape a failure (for log levels)
	served map[string]bool // names the exporter's own families have occupied (see servedNames)

	limits sourceLimits // reads of one source running at once
}

// New checks the sources and returns an Exporter for them. Two sources of one kind with the
// same name are an error: their series could not be told apart.
func New(sources []Source, opts Options) (*Exporter, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxTimeout <= 0 {
		opts.MaxTimeout = DefaultMaxTimeout
	}
	seen := map[string]string{}
	for _, s := range sources {
		cfg := s.Config()
		key := s.Kind().Name + "\x00" + cfg.SourceName()
		if prev, ok := seen[key]; ok {
			return nil, fmt.Errorf("%s source %q is configured twice (%s and %s): give each a distinct address or name",
				s.Kind().Name, cfg.SourceName(), prev, cfg.Address)
		}
		seen[key] = cfg.Address
	}
	e := &Exporter{
		sources:  sources,
		opts:     opts,
		logger:   opts.Logger,
		registry: prometheus.NewRegistry(),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wsgi_exporter_scrape_errors_total",
			Help: "Failed scrapes of a source, by reason.",
		}, []string{"kind", "source", "reason"}),
		duration: prometheus.NewDesc("wsgi_exporter_scrape_duration_seconds",
			"How long the last scrape of a source took.", []string{"kind", "source"}, nil),
		down: map[string]bool{},
	}
	e.registry.MustRegister(e.errors)
	e.globs = make([]*globState, len(sources))
	for i, s := range sources {
		e.initErrors(s)
		if _, ok := s.(Expander); ok {
			e.globs[i] = &globState{}
		}
	}
	return e, nil
}

// Registry holds the exporter's long-lived metrics; main adds build info and process metrics.
func (e *Exporter) Registry() *prometheus.Registry { return e.registry }

// Sources returns the configured sources.
func (e *Exporter) Sources() []Source { return e.sources }

// initErrors creates the error counters of a source at 0 for every reason.
func (e *Exporter) initErrors(s Source) {
	for _, r := range reasons {
		e.errors.WithLabelValues(s.Kind().Name, s.Config().SourceName(), r)
	}
}

// Gatherer returns a Gatherer that scrapes every source once under ctx. When timeout is
// positive it is the deadline of every source; otherwise each source's own Config.Timeout.
// Deadlines count from this call: globs are expanded here, and their targets scraped when
// the Gatherer is gathered.
func (e *Exporter) Gatherer(ctx context.Context, timeout time.Duration) prometheus.Gatherer {
	start := time.Now()
	reg := prometheus.NewRegistry()
	var late []*lateApp
	for _, p := range e.plan(ctx, timeout, start) {
		c := &scrapeCollector{e: e, ctx: ctx, start: start, timeout: timeout, src: p.src, err: p.err}
		if _, ok := p.src.(appSource); ok && p.err == nil {
			c.late = &lateApp{src: p.src}
			late = append(late, c.late)
		}
		prometheus.WrapRegistererWith(p.src.Config().Labels, reg).MustRegister(c)
	}
	// The scrape registry is gathered first, so errors counted in it are in this answer. The
	// application sources' metrics come last (see appSource).
	return &requestGatherer{e: e, first: prometheus.Gatherers{reg, e.registry}, late: late}
}

// Handler serves /metrics: one scrape of every source per request, isolated from concurrent
// requests, under the deadline Prometheus announces. opts.MaxRequestsInFlight bounds the
// requests served at once (each scrapes every source): more are answered 503.
func (e *Exporter) Handler(opts promhttp.HandlerOpts) http.Handler {
	var inFlight chan struct{}
	if opts.MaxRequestsInFlight > 0 {
		inFlight = make(chan struct{}, opts.MaxRequestsInFlight)
	}
	// The limit is applied here, once for all requests: promhttp's own would be per handler,
	// and a handler is built per request around that request's Gatherer.
	opts.MaxRequestsInFlight = 0
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if inFlight != nil {
			select {
			case inFlight <- struct{}{}:
				defer func() { <-inFlight }()
			default:
				http.Error(w, fmt.Sprintf("Limit of concurrent scrapes reached (%d), try again later.", cap(inFlight)), http.StatusServiceUnavailable)
				return
			}
		}
		timeout := e.requestTimeout(r)
		promhttp.HandlerFor(e.Gatherer(r.Context(), timeout), opts).ServeHTTP(w, r)
	})
}

// requestTimeout reads the scrape timeout header; 0 when absent or unusable. A timeout over
// Options.MaxTimeout counts as MaxTimeout.
func (e *Exporter) requestTimeout(r *http.Request) time.Duration {
	v := r.Header.Get(ScrapeTimeoutHeader)
	if v == "" {
		return 0
	}
	secs, err := strconv.ParseFloat(v, 64)
	if err != nil || !(secs > 0) { // also rejects NaN
		e.logger.Debug("ignoring unusable scrape timeout header", "value", v)
		return 0
	}
	announced := e.opts.MaxTimeout
	if secs < announced.Seconds() { // also keeps +Inf and huge values from overflowing
		announced = time.Duration(secs * float64(time.Second))
	}
	t := announced - e.opts.TimeoutOffset
	if t < announced/2 {
		t = announced / 2 // a tiny timeout: keep half of it rather than nothing
	}
	return t
}

// noteResult logs a source's failure when it starts failing (at error level) and its
// recovery; repeated failures are logged at debug level only.
func (e *Exporter) noteResult(kind, name string, err error, reason string) {
	key := kind + "\x00" + name
	e.mu.Lock()
	wasDown, known := e.down[key]
	e.down[key] = err != nil
	e.mu.Unlock()
	switch {
	case err != nil && !wasDown:
		e.logger.Error("scrape failed", "kind", kind, "source", name, "reason", reason, "err", err)
	case err != nil:
		e.logger.Debug("scrape failed again", "kind", kind, "source", name, "reason", reason, "err", err)
	case known && wasDown:
		e.logger.Info("scrape recovered", "kind", kind, "source", name)
	}
}
