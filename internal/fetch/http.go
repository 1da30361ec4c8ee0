package fetch

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/wsgi-exporter/wsgi_exporter/internal/tlsconfig"
)

// The rules every HTTP source (nginx stub_status, uWSGI --stats-http) follows toward its server.

// MaxResponseHeaderBytes caps the header of an HTTP answer: its status line and header lines,
// with those of the informational (1xx) answers before it. A longer header fails the read with
// reason too_large (ErrHeaderTooLarge).
const MaxResponseHeaderBytes = 64 << 10

var (
	// ErrHeaderTooLarge is the error of an answer whose header passes MaxResponseHeaderBytes.
	ErrHeaderTooLarge = fmt.Errorf("response header larger than the %d byte limit", MaxResponseHeaderBytes)
	// ErrNotHTTP is the error of an answer that does not start as HTTP does ("HTTP/"): something
	// else listens there (a uWSGI stats port given as an HTTP address, say).
	ErrNotHTTP = errors.New("does not speak HTTP (the answer does not start with HTTP/)")
)

// handshakeTimeout bounds a TLS handshake whose dial has no deadline of its own (the
// transport may finish a dial for a later request after the first one gave up).
const handshakeTimeout = 10 * time.Second

// HTTPOptions configure NewHTTPClient.
type HTTPOptions struct {
	// TLS is the configuration toward https servers; nil means the system roots, verification
	// on, TLS 1.2 or later. An empty ServerName is the host of the address dialled.
	TLS *tls.Config
	// Dial opens the connection; nil means TCP (a net.Dialer). A unix socket target sets it.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// NewHTTPClient returns the HTTP/1.1 client of one source: at most one idle connection, no
// proxy from the environment (the servers are local), redirects not followed (a redirect is
// answered with its status, an error), the header cap above counted on the connection itself,
// and TLS done by the client's own dial so that the cap counts the plain text.
func NewHTTPClient(o HTTPOptions) *http.Client {
	dial := o.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	tlsCfg := o.TLS
	if tlsCfg == nil {
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tr := &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        1,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     time.Minute,
		ForceAttemptHTTP2:   false,
		// The transport's own cap is a backstop: it counts read-ahead of the body too, so it
		// is set above ours, which counts the header exactly and fails with a typed error.
		MaxResponseHeaderBytes: 2 * MaxResponseHeaderBytes,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return newHeaderConn(c), nil
		},
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			raw, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			cfg := tlsCfg.Clone()
			if cfg.ServerName == "" {
				if host, _, err := net.SplitHostPort(addr); err == nil {
					cfg.ServerName = host
				}
			}
			hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
			defer cancel()
			tc := tls.Client(raw, cfg)
			if err := tc.HandshakeContext(hctx); err != nil {
				raw.Close()
				if ctx.Err() != nil {
					return nil, err
				}
				return nil, Errorf(ReasonConnect, "TLS handshake failed: %w", err)
			}
			return newHeaderConn(tc), nil
		},
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Get sends req (a GET made with ctx) with c and returns the body of a 200 answer. The body
// is closed when ctx ends, whatever the status, so no read of it outlives the scrape; a
// Content-Length over maxBody fails at once with reason too_large (the reader must still cap
// what it reads: the length may be absent). Any other status fails with reason http_status
// naming it; the body of a 1xx answer (101 Switching Protocols, the one the transport
// returns) is not read at all, that of another status up to 4 KiB. who names the server in
// errors about its answer ("nginx"), target in errors about the request (its address): neither
// may hold a secret.
func Get(ctx context.Context, c *http.Client, req *http.Request, maxBody int64, who, target string) (io.ReadCloser, error) {
	resp, err := c.Do(req)
	if err != nil {
		return nil, RequestError(ctx, err, target)
	}
	body := &ctxBody{ReadCloser: resp.Body}
	body.stop = context.AfterFunc(ctx, func() { _ = resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode >= 200 {
			_, _ = io.Copy(io.Discard, io.LimitReader(body, 4<<10)) // lets the connection be reused
		}
		body.Close()
		return nil, Errorf(ReasonHTTPStatus, "%s answered %s, want 200 OK", who, resp.Status)
	}
	if resp.ContentLength > maxBody {
		body.Close()
		return nil, Errorf(ReasonTooLarge, "response of %d bytes is larger than the %d byte limit", resp.ContentLength, maxBody)
	}
	return body, nil
}

// ctxBody is a response body that is closed when its scrape's context ends.
type ctxBody struct {
	io.ReadCloser
	stop func() bool
}

func (b *ctxBody) Close() error {
	b.stop()
	return b.ReadCloser.Close()
}

// RequestError classifies an error of http.Client.Do, which got no answer: timeout (ctx
// ended), connect (refused, no such host or socket, TLS handshake or certificate), permission
// (a unix socket the exporter may not open), too_large (ErrHeaderTooLarge), decode
// (ErrNotHTTP), read (closed before a complete header).
func RequestError(ctx context.Context, err error, target string) error {
	var (
		fe *Error
		oe *net.OpError
	)
	switch {
	case ctx.Err() != nil:
		return Errorf(ReasonTimeout, "no answer from %s: %w", target, ctx.Err())
	case errors.As(err, &fe):
		// The header cap, the answer that is not HTTP, a failed handshake: typed at the source.
		return &Error{Reason: fe.Reason, Err: fmt.Errorf("%s: %w", target, fe.Err)}
	case tlsconfig.IsHandshakeFailure(err):
		// TLS 1.3: a server that refuses the client's certificate says so after the client's
		// side of the handshake is done, at the first read.
		return Errorf(ReasonConnect, "TLS handshake with %s failed: %w", target, inner(err))
	case errors.As(err, &oe) && oe.Op == "dial" && errors.Is(err, os.ErrPermission):
		return Errorf(ReasonPermission, "connecting to %s: %w", target, oe)
	case oe != nil && oe.Op == "dial" && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, os.ErrDeadlineExceeded):
		// Refused, no such socket or host, or a unix socket whose listen backlog is full:
		// that connect fails at once with EAGAIN, which Go's error calls a timeout although
		// no deadline passed.
		return Errorf(ReasonConnect, "connecting to %s: %w", target, oe)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return Errorf(ReasonRead, "%s closed the connection without a complete answer: %w", target, inner(err))
	case ReasonOf(err) == ReasonOther:
		return Errorf(ReasonConnect, "requesting %s: %w", target, inner(err))
	}
	return Wrap(ReasonOf(err), fmt.Errorf("requesting %s: %w", target, inner(err)))
}

// inner is the error inside the *url.Error of http.Client.Do, whose text repeats the request's
// URL (query and all): errors name the target by the caller's safe name instead.
func inner(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// headerConn counts the header of each answer as the transport reads it: from the first byte
// read after a request is written to the blank line that ends the header of the final answer
// (informational 1xx answers other than 101 are followed by another header, counted with
// them). A read that would pass MaxResponseHeaderBytes fails with ErrHeaderTooLarge, and so
// does every read after it.
type headerConn struct {
	net.Conn
	mu     sync.Mutex
	state  int // idle: no answer expected yet; inHeader; inBody (until the next request)
	n      int // header bytes of this answer so far
	start  [64]byte
	nstart int  // bytes of start filled: the beginning of the current header block
	eol    bool // the last byte of the header (ignoring '\r') ended a line
	err    error
}

const (
	idle = iota
	inHeader
	inBody
)

func newHeaderConn(c net.Conn) *headerConn { return &headerConn{Conn: c} }

// NewHeaderConn wraps c with the header cap of NewHTTPClient's connections, for a client
// that reads answers on c itself (http.ReadResponse): the same ErrHeaderTooLarge and
// ErrNotHTTP, typed errors of reason too_large and decode.
func NewHeaderConn(c net.Conn) net.Conn { return newHeaderConn(c) }

func (c *headerConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.state != inHeader { // a new request (several writes of one request start it once)
		c.state, c.n, c.nstart, c.eol = inHeader, 0, 0, false
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *headerConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	n, rerr := c.Conn.Read(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == inHeader {
		if err := c.scan(p[:n]); err != nil {
			c.err = err
			return 0, err
		}
	}
	return n, rerr
}

// scan follows the header through b.
func (c *headerConn) scan(b []byte) error {
	for _, ch := range b {
		if c.n++; c.n > MaxResponseHeaderBytes {
			return &Error{Reason: ReasonTooLarge, Err: ErrHeaderTooLarge}
		}
		if c.nstart < len(c.start) {
			c.start[c.nstart] = ch
			c.nstart++
			if c.nstart == 5 && string(c.start[:5]) != "HTTP/" {
				return &Error{Reason: ReasonDecode, Err: ErrNotHTTP}
			}
		}
		switch ch {
		case '\r':
		case '\n':
			if !c.eol {
				c.eol = true
				continue
			}
			// A blank line: the end of a header block.
			if code := c.status(); code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
				c.nstart, c.eol = 0, false // another answer follows
				continue
			}
			c.state = inBody
			return nil
		default:
			c.eol = false
		}
	}
	return nil
}

// status is the status code of the header block read, 0 if it has none: as net/http reads
// it, the three characters after the first space and any spaces after it.
func (c *headerConn) status() int {
	s := c.start[:c.nstart]
	_, after, ok := bytes.Cut(s, []byte(" "))
	if !ok {
		return 0
	}
	after = bytes.TrimLeft(after, " ")
	if len(after) < 3 || (len(after) > 3 && after[3] != ' ' && after[3] != '\r' && after[3] != '\n') {
		return 0
	}
	code := 0
	for _, d := range after[:3] {
		if d < '0' || d > '9' {
			return 0
		}
		code = code*10 + int(d-'0')
	}
	return code
}
