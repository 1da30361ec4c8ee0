package uwsgi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// DefaultMaxResponseSize caps a stats document. A gevent instance with thousands of cores
// writes a few MB; beyond the cap the read stops with reason too_large. The cap bounds the
// bytes read and so the time a decode takes; the memory is bounded by Limits.
const DefaultMaxResponseSize = 32 << 20

// Client reads the stats document of one address. It is safe for concurrent use.
type Client struct {
	addr    Address
	maxSize int64
	limits  Limits
	http    *http.Client
	dialer  net.Dialer
}

// ClientOptions tune a Client.
type ClientOptions struct {
	// MaxSize caps the stats document in bytes; <= 0 means DefaultMaxResponseSize.
	MaxSize int64
	// TLS is the client configuration toward an https:// stats server; nil means the system
	// roots with verification on.
	TLS *tls.Config
	// Limits caps what is kept of a document (zero fields: DefaultLimits).
	Limits Limits
}

// NewClient returns a client for addr. Every read is bounded by opts.MaxSize, opts.Limits and
// its context's deadline.
func NewClient(addr Address, opts ClientOptions) *Client {
	if opts.MaxSize <= 0 {
		opts.MaxSize = DefaultMaxResponseSize
	}
	c := &Client{addr: addr, maxSize: opts.MaxSize, limits: opts.Limits}
	if addr.Transport == HTTP {
		c.http = fetch.NewHTTPClient(fetch.HTTPOptions{TLS: opts.TLS})
	}
	return c
}

// SetHTTPTransport replaces the HTTP transport (tests use it to mock the network).
func (c *Client) SetHTTPTransport(rt http.RoundTripper) {
	if c.http != nil {
		c.http.Transport = rt
	}
}

// Close closes the idle kept-alive connection of an http(s) stats server (a client of another
// transport keeps none). A later read opens a new one.
func (c *Client) Close() {
	if c.http != nil {
		c.http.CloseIdleConnections()
	}
}

// Address is the address the client reads.
func (c *Client) Address() Address { return c.addr }

// Stats reads and decodes the stats document as it arrives (the document is never held
// whole: see DecodeFrom), under ctx's deadline, the size cap and the client's Limits. Errors
// carry a fetch reason: connect, timeout, read, too_large, http_status, decode, not_found,
// permission, other.
func (c *Client) Stats(ctx context.Context) (*Stats, error) {
	var (
		st  *Stats
		err error
	)
	switch c.addr.Transport {
	case TCP:
		st, err = c.stream(ctx, "tcp", c.addr.Host)
	case Unix:
		st, err = c.stream(ctx, "unix", c.addr.Path)
	case HTTP:
		st, err = c.fetchHTTP(ctx)
	case File:
		st, err = c.readFile(ctx)
	default:
		return nil, fmt.Errorf("unsupported transport %q", c.addr.Transport)
	}
	if err != nil {
		return nil, classify(ctx, err)
	}
	return st, nil
}

// decode reads the document from r.
func (c *Client) decode(r io.Reader) (*Stats, error) {
	return DecodeFrom(r, c.maxSize, c.limits)
}

// classify makes a deadline that passed during a read a timeout, whichever of the socket
// deadline and the context noticed it first.
func classify(ctx context.Context, err error) error {
	if fetch.ReasonOf(err) == fetch.ReasonTooLarge {
		return err
	}
	if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		var e *fetch.Error
		if errors.As(err, &e) && e.Reason == fetch.ReasonTimeout {
			return err
		}
		return fetch.Errorf(fetch.ReasonTimeout, "no complete answer within the deadline: %w", unwrapReason(err))
	}
	return err
}

// unwrapReason drops a fetch.Error wrapper so that a new reason can be attached.
func unwrapReason(err error) error {
	var e *fetch.Error
	if errors.As(err, &e) {
		return e.Err
	}
	return err
}

// dialError classifies a failed dial: a socket the exporter may not open is a permission
// problem, anything else (refused, no such socket or host) a connect failure.
func dialError(network, address string, err error) error {
	if errors.Is(err, os.ErrPermission) {
		return fetch.Errorf(fetch.ReasonPermission, "connecting to %s://%s: %w", network, address, err)
	}
	return fetch.Errorf(fetch.ReasonConnect, "connecting to %s://%s: %w", network, address, err)
}

// stream dials the stats server, which writes its document and closes the connection.
func (c *Client) stream(ctx context.Context, network, address string) (*Stats, error) {
	conn, err := c.dialer.DialContext(ctx, network, address)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, dialError(network, address, err)
	}
	var st *Stats
	err = fetch.WithConn(ctx, conn, func(r io.Reader) error {
		st, err = c.decode(r)
		return err
	})
	return st, err
}

func (c *Client) fetchHTTP(ctx context.Context) (*Stats, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.addr.URL, nil)
	if err != nil {
		return nil, fetch.Errorf(fetch.ReasonOther, "building the request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	shown := c.addr.Redacted()
	body, err := fetch.Get(ctx, c.http, req, c.maxSize, "the stats server "+shown, shown)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	return c.decode(body)
}

func (c *Client) readFile(ctx context.Context) (*Stats, error) {
	// O_NONBLOCK: if the path is (or is swapped for) a FIFO, opening it must not wait for a
	// writer; the type is then checked on the opened file, so nothing can change in between.
	// O_NOFOLLOW: the file itself may not be a symbolic link, so the exporter reads the file
	// it was told to and no other.
	f, err := os.OpenFile(c.addr.Path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fetch.Errorf(fetch.ReasonOther, "%s is a symbolic link: name the file it points to", c.addr.Path)
	}
	if err != nil {
		return nil, err // not_found / permission by fetch.ReasonOf
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fetch.Wrap(fetch.ReasonRead, err)
	}
	if !fi.Mode().IsRegular() {
		// A FIFO or device could block or never end: only regular files are read.
		return nil, fetch.Errorf(fetch.ReasonOther, "%s is not a regular file", c.addr.Path)
	}
	if fi.Size() > c.maxSize {
		// Fail before reading: the cap is there so an oversized document costs nothing.
		return nil, fetch.Errorf(fetch.ReasonTooLarge, "%s holds %d bytes, over the %d byte limit", c.addr.Path, fi.Size(), c.maxSize)
	}
	// Still bounded: the file may grow after the Stat. The reader stops at ctx's deadline: a
	// decode abandoned by its scrape ends at its next read.
	return c.decode(fetch.ContextReader(ctx, f))
}
