package fetch_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
	"github.com/wsgi-exporter/wsgi_exporter/internal/testcert"
	"github.com/wsgi-exporter/wsgi_exporter/nginx"
	"github.com/wsgi-exporter/wsgi_exporter/uwsgi"
)

// The two HTTP clients (uWSGI --stats-http and nginx stub_status) follow one set of rules for
// what an HTTP server may do. Each case runs against both, over a real listener.

const (
	stubBody  = "Active connections: 1 \nserver accepts handled requests\n 1 1 1 \nReading: 0 Writing: 1 Waiting: 0 \n"
	statsBody = `{"version":"2.0.21","workers":[{"id":1,"status":"idle"}]}`
)

// rawServer answers every connection with answer, after reading the request.
func rawServer(t *testing.T, tlsCfg *tls.Config, answer func(w io.Writer, body string)) string {
	t.Helper()
	var l net.Listener
	var err error
	if tlsCfg != nil {
		l, err = tls.Listen("tcp", "127.0.0.1:0", tlsCfg)
	} else {
		l, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	t.Cleanup(func() {
		close(done)
		l.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				req, err := http.ReadRequest(bufio.NewReader(conn))
				if err != nil {
					return
				}
				body := statsBody
				if req.URL.Path == "/stub_status" {
					body = stubBody
				}
				w := bufio.NewWriter(conn)
				answer(w, body)
				_ = w.Flush()
				// Then stay: a silent server holds the connection until the client leaves.
				go func() { <-done; conn.Close() }()
				_, _ = io.Copy(io.Discard, conn)
			})
		}
	})
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
	}
	return scheme + "://" + l.Addr().String()
}

type client struct {
	name  string
	fetch func(ctx context.Context, base string, tlsCfg *tls.Config) error
}

var clients = []client{
	{"uwsgi", func(ctx context.Context, base string, tlsCfg *tls.Config) error {
		a, err := uwsgi.ParseAddress(base + "/")
		if err != nil {
			return err
		}
		_, err = uwsgi.NewClient(a, uwsgi.ClientOptions{TLS: tlsCfg}).Stats(ctx)
		return err
	}},
	{"nginx", func(ctx context.Context, base string, tlsCfg *tls.Config) error {
		tgt, err := nginx.ParseAddress(base + "/stub_status")
		if err != nil {
			return err
		}
		c := nginx.NewClient(tgt, nginx.Options{TLS: tlsCfg})
		defer c.Close()
		_, err = c.Fetch(ctx)
		return err
	}},
}

// run fetches from the server with a deadline of d and returns the error; a fetch that has
// not returned a minute after its deadline is a failure (the read was not bounded).
func run(t *testing.T, c client, base string, tlsCfg *tls.Config, d time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- c.fetch(ctx, base, tlsCfg) }()
	select {
	case err := <-errc:
		return err
	case <-time.After(d + time.Minute):
		t.Fatalf("%s: still reading a minute after its %v deadline", c.name, d)
		return nil
	}
}

func header(w io.Writer, status string, pad int) {
	fmt.Fprintf(w, "HTTP/1.1 %s\r\n", status)
	for i := 0; pad > 0; i++ {
		n := min(pad, 1000)
		fmt.Fprintf(w, "X-Pad-%d: %s\r\n", i, strings.Repeat("p", n))
		pad -= n
	}
}

func ok(pad int) func(io.Writer, string) {
	return func(w io.Writer, body string) {
		header(w, "200 OK", pad)
		fmt.Fprintf(w, "Content-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
	}
}

func TestHTTPClientsOneRule(t *testing.T) {
	ca := testcert.New(t, "test CA", nil)
	leaf := testcert.New(t, "127.0.0.1", ca)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{leaf.Pair(t)}}
	clientTLS := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}

	for _, tc := range []struct {
		name   string
		answer func(io.Writer, string)
		reason string // "" for success
		text   string // in the error
	}{
		{"60 KiB of headers", ok(60 << 10), "", ""},
		{"one header over 64 KiB", func(w io.Writer, body string) {
			fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nX-Pad: %s\r\nContent-Length: %d\r\n\r\n%s", strings.Repeat("a", 64<<10), len(body), body)
		}, fetch.ReasonTooLarge, "response header larger than the 65536 byte limit"},
		{"many headers over 64 KiB", ok(70 << 10), fetch.ReasonTooLarge, "response header larger than the 65536 byte limit"},
		{"1xx answers, then a header, over 64 KiB together", func(w io.Writer, body string) {
			for range 3 {
				header(w, "103 Early Hints", 20<<10)
				io.WriteString(w, "\r\n")
			}
			ok(6<<10)(w, body)
		}, fetch.ReasonTooLarge, "response header larger than the 65536 byte limit"},
		{"100 Continue, then the answer", func(w io.Writer, body string) {
			io.WriteString(w, "HTTP/1.1 100 Continue\r\n\r\n")
			ok(0)(w, body)
		}, "", ""},
		{"101 Switching Protocols, then silence", func(w io.Writer, _ string) {
			io.WriteString(w, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		}, fetch.ReasonHTTPStatus, "101 Switching Protocols"},
		{"101 without Upgrade, then silence", func(w io.Writer, _ string) {
			io.WriteString(w, "HTTP/1.1 101 Switching Protocols\r\n\r\n")
		}, fetch.ReasonHTTPStatus, "101 Switching Protocols"},
		{"503 with an endless body", func(w io.Writer, _ string) {
			io.WriteString(w, "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n")
			for range 1000 {
				fmt.Fprintf(w, "1000\r\n%s\r\n", strings.Repeat("x", 0x1000))
			}
		}, fetch.ReasonHTTPStatus, "503 Service Unavailable"},
		{"200, then a silent body", func(w io.Writer, _ string) {
			io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
		}, fetch.ReasonTimeout, ""},
		{"header, then silence", func(w io.Writer, _ string) {
			io.WriteString(w, "HTTP/1.1 200 OK\r\nX-A: b\r\n")
		}, fetch.ReasonTimeout, ""},
	} {
		for _, c := range clients {
			for _, secure := range []bool{false, true} {
				name := tc.name + "/" + c.name + "/http"
				var sTLS, cTLS *tls.Config
				if secure {
					name, sTLS, cTLS = tc.name+"/"+c.name+"/https", serverTLS, clientTLS
				}
				t.Run(name, func(t *testing.T) {
					base := rawServer(t, sTLS, tc.answer)
					err := run(t, c, base, cTLS, time.Second)
					if got := fetch.ReasonOf(err); got != tc.reason {
						t.Fatalf("reason %q, want %q (%v)", got, tc.reason, err)
					}
					if err != nil && !strings.Contains(err.Error(), tc.text) {
						t.Fatalf("error %q does not say %q", err, tc.text)
					}
					if tc.reason == fetch.ReasonTooLarge && !errors.Is(err, fetch.ErrHeaderTooLarge) {
						t.Fatalf("error %v is not fetch.ErrHeaderTooLarge", err)
					}
				})
			}
		}
	}
}

// On a kept-alive connection each answer's header is counted on its own: five answers with
// 40 KiB headers each (200 KiB in all) read over one connection.
func TestHTTPHeaderCapPerAnswer(t *testing.T) {
	var conns atomic.Int32
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Pad", strings.Repeat("p", 40<<10))
		if r.URL.Path == "/stub_status" {
			io.WriteString(w, stubBody)
		} else {
			io.WriteString(w, statsBody)
		}
	}))
	ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	ts.Start()
	t.Cleanup(ts.Close)

	tgt, err := nginx.ParseAddress(ts.URL + "/stub_status")
	if err != nil {
		t.Fatal(err)
	}
	c := nginx.NewClient(tgt, nginx.Options{})
	defer c.Close()
	for i := range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.Fetch(ctx)
		cancel()
		if err != nil {
			t.Fatalf("fetch %d: %v", i, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections, want 1 kept alive", n)
	}
}
