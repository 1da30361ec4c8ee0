package nginx

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
	"github.com/wsgi-exporter/wsgi_exporter/internal/tlsconfig"
)

// DefaultMaxBodySize caps a stub_status body. nginx writes fewer than 200 bytes.
const DefaultMaxBodySize = 64 << 10

// maxHeaderBytes caps the response headers nginx may send before the body.
const maxHeaderBytes = 64 << 10

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
}

// NewClient returns a client for t. Its transport is its own: a unix target's dialer never
// serves another target.
func NewClient(t Target, opts Options) *Client {
	if opts.MaxBodySize <= 0 {
		opts.MaxBodySize = DefaultMaxBodySize
	}
	tr := &http.Transport{
		Proxy:                  nil, // stub_status is local; an environment proxy is never wanted
		MaxIdleConns:           1,
		MaxIdleConnsPerHost:    1,
		IdleConnTimeout:        time.Minute,
		MaxResponseHeaderBytes: maxHeaderBytes,
		ForceAttemptHTTP2:      false,
	}
	var d net.Dialer
	if t.Socket != "" {
		socket := t.Socket
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", socket)
		}
	} else {
		tr.DialContext = d.DialContext
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
		tr.TLSClientConfig = cfg
	}
	return &Client{
		target: t,
		opts:   opts,
		http: &http.Client{
			Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse // a redirect is answered with its status: an error
			},
		},
	}
}

// Target returns the target the client reads.
func (c *Client) Target() Target { return c.target }

// Close drops the client's idle connection.
func (c *Client) Close() { c.http.CloseIdleConnections() }

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
	reqCtx, handshakeFailed := tlsconfig.TraceHandshake(ctx, c.target.URL.Scheme == "https")
	req, err := http.NewRequestWithContext(reqCtx, http.MethodGet, c.target.URL.String(), nil)
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
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.requestError(ctx, err, handshakeFailed())
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // lets the connection be reused
		return nil, fetch.Errorf(fetch.ReasonHTTPStatus, "nginx answered %s, want 200 OK", resp.Status)
	}
	if resp.ContentLength > c.opts.MaxBodySize {
		return nil, fetch.Errorf(fetch.ReasonTooLarge, "response of %d bytes is larger than the %d byte limit", resp.ContentLength, c.opts.MaxBodySize)
	}
	b, err := fetch.ReadAll(resp.Body, c.opts.MaxBodySize)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fetch.Errorf(fetch.ReasonTimeout, "reading the body: %w", ctx.Err())
		}
		return nil, fmt.Errorf("reading the body: %w", err)
	}
	return b, nil
}

// requestError classifies an error of http.Client.Do, which got no response. handshakeFailed
// says the TLS handshake of the request's connection failed.
func (c *Client) requestError(ctx context.Context, err error, handshakeFailed bool) error {
	if ctx.Err() != nil {
		return fetch.Errorf(fetch.ReasonTimeout, "no answer from %s: %w", c.target, ctx.Err())
	}
	if handshakeFailed || tlsconfig.IsHandshakeFailure(err) {
		return fetch.Errorf(fetch.ReasonConnect, "TLS handshake with %s failed: %w", c.target, err)
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" && errors.Is(err, os.ErrPermission) {
		// EACCES: a unix socket the exporter's user may not write to.
		return fetch.Errorf(fetch.ReasonPermission, "connecting to %s: %w", c.target, err)
	}
	if oe != nil && oe.Op == "dial" && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, os.ErrDeadlineExceeded) {
		// Refused, no such socket or host, or a unix socket whose listen backlog is full:
		// that connect fails at once with EAGAIN, which Go's error calls a timeout although
		// no deadline passed.
		return fetch.Errorf(fetch.ReasonConnect, "connecting to %s: %w", c.target, err)
	}
	if strings.Contains(err.Error(), "server response headers exceeded") {
		// The transport's MaxResponseHeaderBytes; its error has no type of its own.
		return fetch.Errorf(fetch.ReasonTooLarge, "response headers from %s are larger than the %d byte limit: %w", c.target, maxHeaderBytes, err)
	}
	if strings.Contains(err.Error(), "malformed HTTP") {
		// Something answers, but not HTTP (e.g. a uWSGI stats port given by mistake).
		return fetch.Errorf(fetch.ReasonDecode, "%s does not speak HTTP: %w", c.target, err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		// Connected, then closed before a complete response header.
		return fetch.Errorf(fetch.ReasonRead, "%s closed the connection without an answer: %w", c.target, err)
	}
	if fetch.ReasonOf(err) == fetch.ReasonOther {
		return fetch.Errorf(fetch.ReasonConnect, "requesting %s: %w", c.target, err)
	}
	return fmt.Errorf("requesting %s: %w", c.target, err)
}

// hostOnly strips a port from a Host header value.
func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return strings.Trim(h, "[]")
}
