package collector

import (
	"context"

	"github.com/wsgi-exporter/wsgi_exporter/nginx"
)

// NginxKind is nginx's stub_status page (series: nginx_up and nginx_metrics.go); series of
// one target carry source="<scrape URI>".
var NginxKind = Kind{Name: "nginx", SourceLabel: "source", Title: "nginx stub_status page"}

// NginxOptions are the settings shared by every nginx source.
type NginxOptions = nginx.Options

// NewNginx returns the source for one --nginx.scrape-uri. It has an HTTP client and transport
// of its own.
func NewNginx(cfg Config, opts NginxOptions) (Source, error) {
	cfg, err := cfg.forKind(NginxKind)
	if err != nil {
		return nil, err
	}
	t, err := nginx.ParseAddress(cfg.Address)
	if err != nil {
		return nil, err
	}
	cfg.Address = nginx.SourceName(cfg.Address) // the client keeps the real one; no secret leaves
	return &nginxSource{cfg: cfg, client: nginx.NewClient(t, opts)}, nil
}

// NginxTarget returns the canonical form of a source's target (nginx.Target.String), for
// detecting one page configured under two spellings. ok is false for other kinds.
func NginxTarget(s Source) (target string, ok bool) {
	n, ok := s.(*nginxSource)
	if !ok {
		return "", false
	}
	return n.client.Target().String(), true
}

// nginxSource reads one stub_status page.
type nginxSource struct {
	cfg    Config
	client *nginx.Client
}

func (s *nginxSource) Kind() Kind     { return NginxKind }
func (s *nginxSource) Config() Config { return s.cfg }

// boundByDeadline: a TCP target's waits are all on the socket; a unix socket's connect
// resolves a path (see deadlineBound).
func (s *nginxSource) boundByDeadline() bool { return s.client.Target().Socket == "" }

// Scrape reads and parses the page and writes its series.
func (s *nginxSource) Scrape(ctx context.Context, w *Writer) error {
	st, err := s.client.Fetch(ctx)
	if err != nil {
		return err
	}
	nginxTranslate(w, st)
	return nil
}
