package collector

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// ScrapeTimeoutHeader is the header in which Prometheus sends its scrape timeout.
const ScrapeTimeoutHeader = "X-Prometheus-Scrape-Timeout-Seconds"

// Options tune an Exporter.
type Options struct {
	Logger *slog.Logger
	// TimeoutOffset is taken off the scrape timeout Prometheus announces, so that the answer
	// is sent before Prometheus gives up.
	TimeoutOffset time.Duration
	// MaxTimeout caps the scrape timeout a request may announce, so that a hung source holds a
	// request (and its slot of the in-flight limit) at most that long. 0 means DefaultMaxTimeout.
	MaxTimeout time.Duration
	// MaxRequestsInFlight bounds the /metrics requests served at once (each scrapes every
	// source); more are answered 503. 0: no limit.
	MaxRequestsInFlight int
	// MaxSeriesPerSource caps the series one source may add to an answer (a histogram counts
	// its buckets, sum and count); more are dropped and counted. 0 means DefaultMaxSeriesPerSource.
	MaxSeriesPerSource int
	// MaxLabelValueLength caps the bytes of a label value read from a source; a series with a
	// longer one is dropped and counted. 0 means DefaultMaxLabelValueLength.
	MaxLabelValueLength int
	// HandlerMetrics, when set, are the promhttp_metric_handler_* counters the Handler keeps
	// and serves, shared with other Exporters (the generations of a reloaded configuration);
	// nil: the Exporter's own.
	HandlerMetrics *HandlerMetrics
	// SelfMetricsMaxAge is how long the families of the collectors registered with
	// RegisterSelf (the exporter's process and Go runtime metrics, its build info) are reused
	// before they are gathered again; 0 gathers them for every answer.
	SelfMetricsMaxAge time.Duration
	// Self, when set, writes the process's own metrics (process_*, go_*, the build info) into
	// every answer, read at most once per SelfMetricsMaxAge. One value may serve several
	// Exporters.
	Self *SelfMetrics
}

// Defaults of Options.
const (
	DefaultMaxTimeout          = 2 * time.Minute
	DefaultMaxSeriesPerSource  = 100_000
	DefaultMaxLabelValueLength = 4096
)

// Exporter scrapes every configured source at each request and serves the result.
type Exporter struct {
	sources []Source
	consts  []*sourceLabels // by source
	opts    Options
	logger  *slog.Logger

	registry atomic.Pointer[prometheus.Registry] // made by Registry(); gathered for every answer when it exists
	self     selfMetrics                         // the process's own metrics, gathered at most once per SelfMetricsMaxAge
	shared   selfMetrics                         // RegisterShared's, gathered again only after RefreshSelf
	handler  handlerStats                        // the /metrics handler's own counters (promhttp_metric_handler_*)

	globs []*globState // per source; nil unless it is an Expander

	mu       sync.Mutex
	status   map[string]*sourceState    // by kind+source
	counters map[string]*sourceCounters // by kind+source: failed scrapes and dropped series
	served   map[string]bool            // names the exporter's own families have occupied (see servedNames)

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
	if opts.MaxSeriesPerSource <= 0 {
		opts.MaxSeriesPerSource = DefaultMaxSeriesPerSource
	}
	if opts.MaxLabelValueLength <= 0 {
		opts.MaxLabelValueLength = DefaultMaxLabelValueLength
	}
	seen := map[string]string{}
	consts := make([]*sourceLabels, len(sources))
	for i, s := range sources {
		cfg := s.Config()
		key := s.Kind().Name + "\x00" + cfg.SourceName()
		if prev, ok := seen[key]; ok {
			return nil, fmt.Errorf("%s source %q is configured twice (%s and %s): give each a distinct address or name",
				s.Kind().Name, cfg.SourceName(), prev, cfg.Address)
		}
		seen[key] = cfg.Address
		if err := checkSourceLabels(s.Kind(), cfg); err != nil {
			return nil, err
		}
		consts[i] = newSourceLabels(cfg.Labels)
	}
	e := &Exporter{
		sources:  sources,
		consts:   consts,
		opts:     opts,
		logger:   opts.Logger,
		status:   map[string]*sourceState{},
		counters: map[string]*sourceCounters{},
	}
	e.self.reg = prometheus.NewRegistry()
	e.self.maxAge = opts.SelfMetricsMaxAge
	e.globs = make([]*globState, len(sources))
	for i, s := range sources {
		e.initCounters(s)
		if _, ok := s.(Expander); ok {
			e.globs[i] = &globState{}
		}
	}
	return e, nil
}

// checkSourceLabels refuses a source name or constant labels that could not be exported: not
// UTF-8, or a constant label that is not a valid name or that a series of the kind already
// carries.
func checkSourceLabels(k Kind, cfg Config) error {
	if !utf8.ValidString(cfg.SourceName()) {
		return fmt.Errorf("%s source %q: the name is not valid UTF-8", k.Name, cfg.SourceName())
	}
	taken := map[string]bool{k.SourceLabel: true, "kind": true, "source": true}
	for _, f := range kindFamilies(k) {
		for _, l := range f.Labels {
			taken[l] = true
		}
	}
	for n, v := range cfg.Labels {
		if !validLabelName(n) {
			return fmt.Errorf("%s source %q: %q is not a valid label name", k.Name, cfg.SourceName(), n)
		}
		if taken[n] {
			return fmt.Errorf("%s source %q: constant label %q is a label the %s series already have", k.Name, cfg.SourceName(), n, k.Name)
		}
		if !utf8.ValidString(v) {
			return fmt.Errorf("%s source %q: the value of constant label %q is not valid UTF-8", k.Name, cfg.SourceName(), n)
		}
	}
	return nil
}

// Registry holds more collectors to gather for every answer; it is made on first use (the
// exporter's own counters are written without one).
func (e *Exporter) Registry() *prometheus.Registry {
	if r := e.registry.Load(); r != nil {
		return r
	}
	e.registry.CompareAndSwap(nil, prometheus.NewRegistry())
	return e.registry.Load()
}

// RefreshSelf makes the next answer gather the RegisterSelf collectors again: call it when one
// of them changed (a probe counted, a reload recorded), so that no answer serves an old value.
func (e *Exporter) RefreshSelf() {
	for _, s := range []*selfMetrics{&e.self, &e.shared} {
		s.mu.Lock()
		s.fams = nil
		s.mu.Unlock()
	}
}

// RegisterShared registers collectors of the exporter's own whose values change only together
// with a call of RefreshSelf (the configuration reload gauges, the /probe counters): their
// families are gathered once, encoded once per format, and reused by every answer until the
// next RefreshSelf, whatever Options.SelfMetricsMaxAge.
func (e *Exporter) RegisterShared(cs ...prometheus.Collector) error {
	e.shared.mu.Lock()
	defer e.shared.mu.Unlock()
	if e.shared.reg == nil {
		e.shared.reg, e.shared.untilRefresh = prometheus.NewRegistry(), true
	}
	e.shared.fams = nil
	for _, c := range cs {
		if err := e.shared.reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// RegisterSelf registers collectors of the exporter process itself (build info, process and Go
// runtime metrics): their families are gathered at most once per Options.SelfMetricsMaxAge
// and shared by the answers in between. They describe the exporter, not a source, and change
// little in a second; at Prometheus' usual intervals every answer gathers them afresh.
func (e *Exporter) RegisterSelf(cs ...prometheus.Collector) error {
	e.self.mu.Lock()
	defer e.self.mu.Unlock()
	e.self.fams = nil // gathered again at the next answer
	for _, c := range cs {
		if err := e.self.reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Sources returns the configured sources.
func (e *Exporter) Sources() []Source { return e.sources }

// initCounters creates the error and drop counters of a source at 0 for every reason.
func (e *Exporter) initCounters(s Source) {
	e.sourceCounters(s.Kind().Name, s.Config().SourceName())
}

// sourceCounters returns the counters of a source, creating them.
func (e *Exporter) sourceCounters(kind, name string) *sourceCounters {
	key := kind + "\x00" + name
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.counters[key]
	if c == nil {
		c = &sourceCounters{kind: kind, source: name, errors: make([]float64, len(reasons))}
		e.counters[key] = c
	}
	return c
}

// forgetSource deletes what the exporter keeps about a source that is gone (a glob target).
func (e *Exporter) forgetSource(kind, name string) {
	e.mu.Lock()
	delete(e.status, kind+"\x00"+name)
	delete(e.counters, kind+"\x00"+name)
	e.mu.Unlock()
}

// limitsFor are the Writer caps of the exporter's options.
func (e *Exporter) writerLimits() writerLimits {
	return writerLimits{maxSeries: e.opts.MaxSeriesPerSource, maxLabel: e.opts.MaxLabelValueLength}
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
