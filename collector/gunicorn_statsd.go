package collector

import (
	"context"

	"github.com/wsgi-exporter/wsgi_exporter/gunicorn"
	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// GunicornStatsdKind is a listener for the statsd datagrams of `gunicorn --statsd-host`
// (series: gunicorn_statsd_up and gunicorn_statsd_metrics.go).
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
	fams     gsTagged
}

// GunicornStatsdOptions are the settings of the statsd listeners: the tag labels kept and the
// series limit.
type GunicornStatsdOptions = gunicorn.StatsdConfig

// NewGunicornStatsd returns a source listening on cfg.Address (host:port for UDP, or a unix
// datagram socket path). Its listener runs from Run.
func NewGunicornStatsd(cfg Config, opts GunicornStatsdOptions) (Source, error) {
	cfg, err := cfg.forKind(GunicornStatsdKind)
	if err != nil {
		return nil, err
	}
	if err := opts.Check(GunicornStatsdReserved...); err != nil {
		return nil, err
	}
	state := gunicorn.NewStatsdState(opts)
	l, err := gunicorn.NewStatsdListener(cfg.Address, state)
	if err != nil {
		return nil, err
	}
	return &GunicornStatsdSource{cfg: cfg, listener: l, state: state, fams: newGSTagged(opts.TagLabels)}, nil
}

// Kind implements Source.
func (s *GunicornStatsdSource) Kind() Kind { return GunicornStatsdKind }

// Config implements Source.
func (s *GunicornStatsdSource) Config() Config        { return s.cfg }
func (s *GunicornStatsdSource) boundByDeadline() bool { return true } // counts in memory: see deadlineBound

// Listener gives access to the socket, e.g. to learn the bound address.
func (s *GunicornStatsdSource) Listener() *gunicorn.StatsdListener { return s.listener }

// State gives access to the aggregation, e.g. to feed it in tests.
func (s *GunicornStatsdSource) State() *gunicorn.StatsdState { return s.state }

// Run implements Runner: it receives datagrams until ctx ends.
func (s *GunicornStatsdSource) Run(ctx context.Context) error { return s.listener.Run(ctx) }

// Scrape implements Source: no I/O, a copy of what was received so far.
func (s *GunicornStatsdSource) Scrape(_ context.Context, w *Writer) error {
	if _, err := s.listener.Bound(); err != nil {
		return fetch.Errorf(fetch.ReasonConnect, "statsd listener on %s is not bound: %w", s.listener.Address, err)
	}
	gsTranslate(w, s.fams, s.state.Snapshot())
	return nil
}
