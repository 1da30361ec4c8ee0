package nginx

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// direct reads a plain-HTTP target (TCP or unix socket) on the calling goroutine: the request,
// made once, written on a kept-alive connection and the answer read with http.ReadResponse,
// through the transport's header cap (fetch.NewHeaderConn) and with its error reasons. The
// transport's client hands each request to the connection's read and write goroutines, which
// costs two to three times the CPU of a stub_status answer (docs/benchmarks.md). At most one
// idle connection is kept, for at most idleTimeout, as the transport keeps it.
type direct struct {
	dial func(ctx context.Context) (net.Conn, error)
	req  []byte        // the whole request
	head *http.Request // what http.ReadResponse needs to know of it (a GET)

	mu   sync.Mutex
	idle *directConn
}

type directConn struct {
	c     net.Conn
	br    *bufio.Reader
	since time.Time // idle since
}

// idleTimeout is how long an idle connection is kept (the transport's IdleConnTimeout).
const idleTimeout = time.Minute

// newDirect returns the direct path of t, or nil when the transport must be used: https, or a
// header value a request line could not carry.
func newDirect(t Target, opts Options) *direct {
	if t.URL.Scheme != "http" || t.URL.User != nil {
		return nil
	}
	host := t.URL.Host
	if opts.Host != "" {
		host = opts.Host
	}
	uri := t.URL.RequestURI()
	for _, v := range []string{host, uri, opts.Username, opts.Password} {
		if strings.ContainsAny(v, "\r\n\x00") {
			return nil
		}
	}
	if host == "" || strings.ContainsAny(uri, " \t") {
		return nil
	}
	var b strings.Builder
	b.WriteString("GET " + uri + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: wsgi_exporter\r\n")
	if opts.Username != "" {
		b.WriteString("Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(opts.Username+":"+opts.Password)) + "\r\n")
	}
	b.WriteString("\r\n")
	d := &direct{req: []byte(b.String()), head: &http.Request{Method: http.MethodGet}}
	var dialer net.Dialer
	if t.Socket != "" {
		socket := t.Socket
		d.dial = func(ctx context.Context) (net.Conn, error) { return dialer.DialContext(ctx, "unix", socket) }
	} else {
		addr := t.URL.Host
		if t.URL.Port() == "" {
			addr = net.JoinHostPort(t.URL.Hostname(), "80")
		}
		d.dial = func(ctx context.Context) (net.Conn, error) { return dialer.DialContext(ctx, "tcp", addr) }
	}
	return d
}

// close drops the idle connection.
func (d *direct) close() {
	d.mu.Lock()
	dc := d.idle
	d.idle = nil
	d.mu.Unlock()
	if dc != nil {
		dc.c.Close()
	}
}

// fetch reads the body of a 200 answer, at most max bytes. target names the target in errors.
func (d *direct) fetch(ctx context.Context, max int64, target string) ([]byte, error) {
	d.mu.Lock()
	dc := d.idle
	d.idle = nil
	d.mu.Unlock()
	if dc != nil && time.Since(dc.since) >= idleTimeout {
		dc.c.Close()
		dc = nil
	}
	reused := dc != nil
	for {
		if dc == nil {
			c, err := d.dial(ctx)
			if err != nil {
				return nil, fetch.RequestError(ctx, err, target)
			}
			hc := fetch.NewHeaderConn(c)
			dc = &directConn{c: hc, br: bufio.NewReaderSize(hc, 4<<10)}
		}
		b, keep, answered, err := d.roundTrip(ctx, dc, max, target)
		if err != nil && reused && !answered && ctx.Err() == nil {
			// The server closed the kept connection while it was idle: once more on a new one,
			// as the transport retries a GET.
			dc.c.Close()
			dc, reused = nil, false
			continue
		}
		if keep && err == nil {
			dc.since = time.Now()
			d.mu.Lock()
			if d.idle == nil {
				d.idle, dc = dc, nil
			}
			d.mu.Unlock()
		}
		if dc != nil {
			dc.c.Close()
		}
		return b, err
	}
}

// roundTrip writes the request on dc and reads the answer. keep says whether dc may serve
// another request; answered whether any of the answer was read.
func (d *direct) roundTrip(ctx context.Context, dc *directConn, max int64, target string) (b []byte, keep, answered bool, err error) {
	deadline, _ := ctx.Deadline()
	if err := dc.c.SetDeadline(deadline); err != nil {
		return nil, false, false, fetch.RequestError(ctx, err, target)
	}
	stop := context.AfterFunc(ctx, func() { _ = dc.c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	fail := func(err error) error {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return fetch.Errorf(fetch.ReasonTimeout, "no answer from %s: %w", target, context.DeadlineExceeded)
		}
		return fetch.RequestError(ctx, err, target)
	}
	if _, err := dc.c.Write(d.req); err != nil {
		return nil, false, false, fail(err)
	}
	if _, err := dc.br.Peek(1); err != nil {
		// Nothing of an answer: a kept connection the server closed may be retried.
		closed := errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
		return nil, false, !closed, fail(err)
	}
	resp, err := http.ReadResponse(dc.br, d.head)
	// Informational answers (but 101) are followed by the final one, as the transport reads them.
	for err == nil && resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
		resp, err = http.ReadResponse(dc.br, d.head)
	}
	if err != nil {
		return nil, false, true, fail(err)
	}
	// The body is not closed on an error: closing a body of http.ReadResponse reads the rest
	// of it, up to the deadline. The connection is closed instead (keep is false).
	if resp.StatusCode != http.StatusOK {
		return nil, false, true, fetch.Errorf(fetch.ReasonHTTPStatus, "nginx answered %s, want 200 OK", resp.Status)
	}
	if resp.ContentLength > max {
		return nil, false, true, fetch.Errorf(fetch.ReasonTooLarge, "response of %d bytes is larger than the %d byte limit", resp.ContentLength, max)
	}
	b, err = fetch.ReadAll(resp.Body, max)
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, false, true, fetch.Errorf(fetch.ReasonTimeout, "reading the body: %w", context.DeadlineExceeded)
		}
		return nil, false, true, fmt.Errorf("reading the body: %w", err)
	}
	// Kept only when nothing follows the answer (bytes after the body would be read as the
	// next answer) and the context's deadline was not set on the connection meanwhile.
	keep = !resp.Close && dc.br.Buffered() == 0 && stop()
	return b, keep, true, nil
}
