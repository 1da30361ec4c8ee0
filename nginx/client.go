package nginx

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// DefaultMaxBodySize caps a stub_status body. nginx writes fewer than 200 bytes.
const DefaultMaxBodySize = 64 << 10

// Options are the settings shared by every nginx target. Each Client still gets its own
// transport, dialer and TLS configuration built from them.
type Options struct {
	TLS         *tls.Config // for https targets; nil means system roots, verification on
	Username    string      // basic auth user; empty means no Authorization header
	Password    string
	Host        string // Host header sent to nginx; empty means the URL's host
	MaxBodySize int64  // <= 0 means DefaultMaxBodySize
}

// Client reads the stub_status page of one target. It is safe for concurrent use.
type Client struct {
	target Target
	opts   Options
	http   *http.Client
	// direct reads plain-HTTP targets without the transport's goroutines (direct.go); nil for
	// https.
	direct *direct
}

// NewClient returns a client for t. Its transport is its own: a unix target's dialer never
// serves another target.
func NewClient(t Target, opts Options) *Client {
	if opts.MaxBodySize <= 0 {
		opts.MaxBodySize = DefaultMaxBodySize
	}
	o := fetch.HTTPOptions{}
	if t.Socket != "" {
		socket := t.Socket
		var d net.Dialer
		o.Dial = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", socket)
		}
	}
	if t.URL.Scheme == "https" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if opts.TLS != nil {
			cfg = opts.TLS.Clone()
		}
		if cfg.ServerName == "" && opts.Host != "" {
			// Verify the certificate of the virtual host asked for, as a browser would.
			cfg.ServerName = hostOnly(opts.Host)
		}
		o.TLS = cfg
	}
	return &Client{target: t, opts: opts, http: fetch.NewHTTPClient(o), direct: newDirect(t, opts)}
}

// Target returns the target the client reads.
func (c *Client) Target() Target { return c.target }

// Close drops the client's idle connection.
func (c *Client) Close() {
	c.http.CloseIdleConnections()
	if c.direct != nil {
		c.direct.close()
	}
}

// Fetch reads and parses the page under ctx's deadline. Errors carry a fetch reason:
// connect, permission, timeout, read, too_large, http_status or decode.
func (c *Client) Fetch(ctx context.Context) (StubStatus, error) {
	b, err := c.fetchBody(ctx)
	if err != nil {
		return StubStatus{}, err
	}
	return ParseStubStatus(b)
}

func (c *Client) fetchBody(ctx context.Context) ([]byte, error) {
	if c.direct != nil {
		return c.direct.fetch(ctx, c.opts.MaxBodySize, c.target.Redacted())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.target.URL.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("building the request: %w", err)
	}
	if c.opts.Host != "" {
		req.Host = c.opts.Host
	}
	if c.opts.Username != "" {
		req.SetBasicAuth(c.opts.Username, c.opts.Password)
	}
	req.Header.Set("User-Agent", "wsgi_exporter")
	body, err := fetch.Get(ctx, c.http, req, c.opts.MaxBodySize, "nginx", c.target.Redacted())
	if err != nil {
		return nil, err
	}
	defer body.Close()
	b, err := fetch.ReadAll(body, c.opts.MaxBodySize)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fetch.Errorf(fetch.ReasonTimeout, "reading the body: %w", ctx.Err())
		}
		return nil, fmt.Errorf("reading the body: %w", err)
	}
	return b, nil
}

// hostOnly strips a port from a Host header value.
func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return strings.Trim(h, "[]")
}
