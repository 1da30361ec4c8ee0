package collector

import (
	"context"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsgi-exporter/wsgi_exporter/gunicorn"
	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// GunicornStatsdKind is a listener for the statsd datagrams of `gunicorn --statsd-host`.
var GunicornStatsdKind = Kind{Name: "gunicorn_statsd", SourceLabel: "source", Title: "gunicorn statsd listener"}

// GunicornStatsdReserved are the label names the statsd metrics use themselves: no tag
// label may take them.
var GunicornStatsdReserved = []string{"source", "code", "level", "le", "reason"}

// GunicornStatsdSource receives statsd datagrams in the background (Run); Scrape returns the
// accumulated state without I/O. It is up while its socket is bound.
type GunicornStatsdSource struct {
	cfg      Config
	listener *gunicorn.StatsdListener
	state    *gunicorn.StatsdState

	requests, responses, duration, workers, logs, backlog *prometheus.Desc
	datagrams, dropped, last, socketDrops, evicted        *prometheus.Desc
}

// NewGunicornStatsdSource returns a source listening on cfg.Address (host:port for UDP, or a
// unix datagram socket path).
func NewGunicornStatsdSource(cfg Config, sc gunicorn.StatsdConfig) (*GunicornStatsdSource, error) {
	if err := sc.Check(GunicornStatsdReserved...); err != nil {
		return nil, err
	}
	state := gunicorn.NewStatsdState(sc)
	l, err := gunicorn.NewStatsdListener(cfg.Address, state)
	if err != nil {
		return nil, err
	}
	base := append([]string{"source"}, sc.TagLabels...)
	with := func(extra string) []string { return append(append([]string(nil), base...), extra) }
	return &GunicornStatsdSource{
		cfg: cfg, listener: l, state: state,
		requests:  prometheus.NewDesc("gunicorn_statsd_requests_total", "Requests gunicorn reported (gunicorn.requests), scaled by the sample rate.", base, nil),
		responses: prometheus.NewDesc("gunicorn_statsd_responses_total", "Requests gunicorn reported by HTTP status code (gunicorn.request.status.<code>).", with("code"), nil),
		duration:  prometheus.NewDesc("gunicorn_statsd_request_duration_seconds", "Request durations gunicorn reported (gunicorn.request.duration).", base, nil),
		workers:   prometheus.NewDesc("gunicorn_statsd_workers", "Worker count gunicorn last reported (gunicorn.workers; sent only when it changes).", base, nil),
		logs:      prometheus.NewDesc("gunicorn_statsd_log_messages_total", "Log messages gunicorn reported by level (gunicorn.log.<level>).", with("level"), nil),
		backlog:   prometheus.NewDesc("gunicorn_statsd_backlog", "Connections waiting in the listen backlog, as last reported (gunicorn.backlog, gunicorn 24.1+).", base, nil),
		datagrams: prometheus.NewDesc("gunicorn_statsd_datagrams_total", "Datagrams received.", []string{"source"}, nil),
		dropped:   prometheus.NewDesc("gunicorn_statsd_lines_dropped_total", "Lines (or whole datagrams, for too_long) dropped, by reason.", []string{"source", "reason"}, nil),
		socketDrops: prometheus.NewDesc("gunicorn_statsd_socket_drops_total",
			"Datagrams the kernel dropped because the listener's receive buffer was full (read from the socket at each scrape).", []string{"source"}, nil),
		evicted: prometheus.NewDesc("gunicorn_statsd_series_evicted_total",
			"Tag-label combinations dropped to make room for a new one (the least recently updated goes; --gunicorn.statsd-max-series).", []string{"source"}, nil),
		last: prometheus.NewDesc("gunicorn_statsd_last_datagram_timestamp_seconds", "When the last datagram arrived, since the unix epoch.", []string{"source"}, nil),
	}, nil
}

// Kind implements Source.
func (s *GunicornStatsdSource) Kind() Kind { return GunicornStatsdKind }

// Config implements Source.
func (s *GunicornStatsdSource) Config() Config { return s.cfg }

// Listener gives access to the socket, e.g. to learn the bound address.
func (s *GunicornStatsdSource) Listener() *gunicorn.StatsdListener { return s.listener }

// State gives access to the aggregation, e.g. to feed it in tests.
func (s *GunicornStatsdSource) State() *gunicorn.StatsdState { return s.state }

// Run implements Runner: it receives datagrams until ctx ends.
func (s *GunicornStatsdSource) Run(ctx context.Context) error { return s.listener.Run(ctx) }

// Scrape implements Source: no I/O, a copy of what was received so far.
func (s *GunicornStatsdSource) Scrape(context.Context) (Emit, error) {
	if _, err := s.listener.Bound(); err != nil {
		return nil, fetch.Errorf(fetch.ReasonConnect, "statsd listener on %s is not bound: %w", s.listener.Address, err)
	}
	snap := s.state.Snapshot()
	return func(ch chan<- prometheus.Metric) { s.emit(snap, ch) }, nil
}

func (s *GunicornStatsdSource) emit(snap gunicorn.StatsdSnapshot, ch chan<- prometheus.Metric) {
	name := s.cfg.SourceName()
	ch <- prometheus.MustNewConstMetric(s.datagrams, prometheus.CounterValue, snap.Datagrams, name)
	ch <- prometheus.MustNewConstMetric(s.socketDrops, prometheus.CounterValue, snap.SocketDrops, name)
	ch <- prometheus.MustNewConstMetric(s.evicted, prometheus.CounterValue, snap.Evicted, name)
	for _, r := range gunicorn.DropReasons {
		ch <- prometheus.MustNewConstMetric(s.dropped, prometheus.CounterValue, snap.Dropped[r], name, r)
	}
	if !snap.LastDatagram.IsZero() {
		ch <- prometheus.MustNewConstMetric(s.last, prometheus.GaugeValue, float64(snap.LastDatagram.UnixNano())/1e9, name)
	}
	for _, g := range snap.Groups {
		lv := append([]string{name}, g.TagValues...)
		plus := func(extra string) []string { return append(append([]string(nil), lv...), extra) }
		ch <- prometheus.MustNewConstMetric(s.requests, prometheus.CounterValue, g.Requests, lv...)
		for code, n := range g.Status {
			ch <- prometheus.MustNewConstMetric(s.responses, prometheus.CounterValue, n, plus(strconv.Itoa(code))...)
		}
		for level, n := range g.Logs {
			ch <- prometheus.MustNewConstMetric(s.logs, prometheus.CounterValue, n, plus(level)...)
		}
		buckets := make(map[float64]uint64, len(gunicorn.DurationBuckets))
		for i, ub := range gunicorn.DurationBuckets {
			buckets[ub] = uint64(g.Buckets[i] + 0.5)
		}
		ch <- prometheus.MustNewConstHistogram(s.duration, uint64(g.DurationCount+0.5), g.DurationSum, buckets, lv...)
		if g.HasWorkers {
			ch <- prometheus.MustNewConstMetric(s.workers, prometheus.GaugeValue, g.Workers, lv...)
		}
		if g.HasBacklog {
			ch <- prometheus.MustNewConstMetric(s.backlog, prometheus.GaugeValue, g.Backlog, lv...)
		}
	}
}
