package collector

import (
	"context"
	"crypto/tls"
	"fmt"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
	"github.com/wsgi-exporter/wsgi_exporter/uwsgi"
)

// UWSGIKind is the uWSGI stats server kind (series: uwsgi_up and uwsgi_metrics.go). Its
// source label is stats_uri, as in timonwong/uwsgi_exporter, so that existing dashboards keep
// their label.
var UWSGIKind = Kind{Name: "uwsgi", SourceLabel: "stats_uri", Title: "uWSGI stats server"}

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
	cfg, err := cfg.forKind(UWSGIKind)
	if err != nil {
		return nil, err
	}
	addr, err := uwsgi.ParseAddress(cfg.Address)
	if err != nil {
		return nil, err
	}
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

// boundByDeadline: over TCP and HTTP every wait is on the socket; a unix socket's connect and
// a file's reads resolve a path, which a hung file system can hold (see deadlineBound).
func (s *uwsgiSource) boundByDeadline() bool {
	t := s.client.Address().Transport
	return t == uwsgi.TCP || t == uwsgi.HTTP
}

// Scrape reads and decodes the stats document and writes its series.
func (s *uwsgiSource) Scrape(ctx context.Context, w *Writer) error {
	st, err := s.client.Stats(ctx)
	if err != nil {
		return err
	}
	uwsgiTranslate(w, st, s.opts.CollectCores)
	return nil
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
func (g *uwsgiGlob) Scrape(context.Context, *Writer) error {
	return fmt.Errorf("%s is a glob: it is scraped through Expand", g.addr)
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
