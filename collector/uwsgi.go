package collector

import (
	"context"
	"crypto/tls"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
	"github.com/wsgi-exporter/wsgi_exporter/uwsgi"
)

// UWSGIOptions tune the uWSGI sources.
type UWSGIOptions struct {
	// MaxResponseSize caps a stats document in bytes; <= 0 means uwsgi.DefaultMaxResponseSize.
	MaxResponseSize int64
	// CollectCores exports the per-core series (uwsgi_worker_core_*). Off by default: with
	// gevent a worker has hundreds of cores.
	CollectCores bool
	// TLS is the client configuration toward https:// stats servers; nil means the system
	// roots with verification on.
	TLS *tls.Config
}

// NewUWSGI returns the source for one --uwsgi.stats-uri. A unix address with a glob
// returns a source that also implements Expander.
func NewUWSGI(cfg Config, opts UWSGIOptions) (Source, error) {
	addr, err := uwsgi.ParseAddress(cfg.Address)
	if err != nil {
		return nil, err
	}
	cfg.Kind = UWSGIKind.Name
	cfg.Address = uwsgi.SourceName(cfg.Address) // the client keeps the real one; no secret leaves
	if addr.IsGlob() {
		return &uwsgiGlob{cfg: cfg, addr: addr, opts: opts}, nil
	}
	return newUWSGISource(cfg, addr, opts), nil
}

func newUWSGISource(cfg Config, addr uwsgi.Address, opts UWSGIOptions) *uwsgiSource {
	return &uwsgiSource{cfg: cfg, client: uwsgi.NewClient(addr, uwsgi.ClientOptions{MaxSize: opts.MaxResponseSize, TLS: opts.TLS}), opts: opts}
}

// uwsgiSource reads one stats address.
type uwsgiSource struct {
	cfg    Config
	client *uwsgi.Client
	opts   UWSGIOptions
}

func (s *uwsgiSource) Kind() Kind     { return UWSGIKind }
func (s *uwsgiSource) Config() Config { return s.cfg }

// Scrape reads and decodes the stats document; the returned Emit only builds metrics.
func (s *uwsgiSource) Scrape(ctx context.Context) (Emit, error) {
	st, err := s.client.Stats(ctx)
	if err != nil {
		return nil, err
	}
	name := s.cfg.SourceName()
	return func(ch chan<- prometheus.Metric) {
		e := uwsgiEmitter{ch: ch, src: name, collectCores: s.opts.CollectCores}
		e.emit(st)
	}, nil
}

// uwsgiGlob is a unix socket glob (unix:///run/uwsgi/*.sock, one socket per Emperor
// vassal). It expands at every scrape into one source per socket, named by its own URI.
type uwsgiGlob struct {
	cfg  Config
	addr uwsgi.Address
	opts UWSGIOptions
}

func (g *uwsgiGlob) Kind() Kind     { return UWSGIKind }
func (g *uwsgiGlob) Config() Config { return g.cfg }

// Scrape is not used: the exporter scrapes what Expand returns.
func (g *uwsgiGlob) Scrape(context.Context) (Emit, error) {
	return nil, fmt.Errorf("%s is a glob: it is scraped through Expand", g.addr)
}

// Expand lists the sockets that match now.
func (g *uwsgiGlob) Expand(ctx context.Context) ([]Source, error) {
	if err := ctx.Err(); err != nil {
		return nil, fetch.Wrap(fetch.ReasonTimeout, err)
	}
	addrs, err := uwsgi.Glob(g.addr)
	if err != nil {
		return nil, fetch.Wrap(fetch.ReasonOther, err)
	}
	out := make([]Source, 0, len(addrs))
	for _, a := range addrs {
		cfg := g.cfg
		cfg.Address = a.String()
		cfg.Name = a.String()
		out = append(out, newUWSGISource(cfg, a, g.opts))
	}
	return out, nil
}
