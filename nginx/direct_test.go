package nginx

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// A plain-HTTP target is read on the calling goroutine (direct.go) with the request the
// transport sent: method, path and query, Host, basic auth, User-Agent; one connection serves
// every fetch.
func TestDirectRequestAndReuse(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int32
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if r.Method != "GET" || r.URL.RequestURI() != "/basic_status?a=b" || r.Host != "status.internal" ||
				!ok || u != "prom" || p != "s3cr:et" || r.UserAgent() != "wsgi_exporter" {
				http.Error(w, fmt.Sprintf("%s %s host %q auth %q %q ua %q", r.Method, r.URL, r.Host, u, p, r.UserAgent()), 400)
				return
			}
			fmt.Fprint(w, idleBody)
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		},
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	c := directClient(t, "unix:"+sock+":/basic_status?a=b", Options{Username: "prom", Password: "s3cr:et", Host: "status.internal"})
	for i := range 3 {
		st, err := fetchTimeout(c, 5*time.Second)
		if err != nil || st != idleStatus {
			t.Fatalf("fetch %d: %+v %v", i, st, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 3 fetches, want 1", n)
	}
}

// directClient returns a client of address that reads on the direct path, closed when the
// test ends.
func directClient(t *testing.T, address string, opts Options) *Client {
	t.Helper()
	tgt, err := ParseAddress(address)
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(tgt, opts)
	t.Cleanup(c.Close)
	if c.direct == nil {
		t.Fatalf("no direct path for %s", address)
	}
	return c
}

// rawServer answers each request on a connection with answer(i), i counting the requests of
// the server; closeAfter closes the connection after each answer.
func rawServer(t *testing.T, closeAfter bool, answer func(i int) string) (string, *atomic.Int32) {
	t.Helper()
	var conns, reqs atomic.Int32
	addr := listenTCP(t, func(conn net.Conn) {
		conns.Add(1)
		br := bufio.NewReader(conn)
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			if _, err := conn.Write([]byte(answer(int(reqs.Add(1))))); err != nil || closeAfter {
				return
			}
		}
	})
	return addr, &conns
}

func okAnswer(extra string) string {
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s", len(idleBody), extra, idleBody)
}

// A kept connection the server closed while idle is replaced once, as the transport retries
// a GET; informational answers, chunked bodies and "Connection: close" are read as the
// transport reads them.
func TestDirectAnswers(t *testing.T) {
	chunked := fmt.Sprintf("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(idleBody), idleBody)
	for _, tc := range []struct {
		name       string
		closeAfter bool
		answer     string
		conns      int32
	}{
		{"closed while idle", true, okAnswer(""), 3},
		{"kept", false, okAnswer(""), 1},
		{"Connection: close", false, okAnswer("Connection: close\r\n"), 3},
		{"100 Continue first", false, "HTTP/1.1 100 Continue\r\n\r\n" + okAnswer(""), 1},
		{"chunked", false, chunked, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, conns := rawServer(t, tc.closeAfter, func(int) string { return tc.answer })
			c := directClient(t, "http://"+addr+"/stub_status", Options{})
			for i := range 3 {
				st, err := fetchTimeout(c, 5*time.Second)
				if err != nil || st != idleStatus {
					t.Fatalf("fetch %d: %+v %v", i, st, err)
				}
				time.Sleep(10 * time.Millisecond) // lets the server close
			}
			if n := conns.Load(); n != tc.conns {
				t.Errorf("%d connections, want %d", n, tc.conns)
			}
		})
	}
}

// An answer that is refused (not 200, or announcing a body over the cap) ends the fetch at
// once and closes the connection, as the transport does: its body is not read to the end.
func TestDirectRefusedAnswerNotDrained(t *testing.T) {
	for _, head := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n",
		"HTTP/1.1 404 Not Found\r\nContent-Length: 1000000000\r\n\r\n",
	} {
		var sent atomic.Int64
		addr := listenTCP(t, func(conn net.Conn) {
			if _, err := http.ReadRequest(bufio.NewReader(conn)); err != nil {
				return
			}
			if _, err := conn.Write([]byte(head)); err != nil {
				return
			}
			chunk := make([]byte, 1<<10)
			for { // a slow body, until the client hangs up
				n, err := conn.Write(chunk)
				sent.Add(int64(n))
				if err != nil {
					return
				}
				time.Sleep(time.Millisecond)
			}
		})
		c := directClient(t, "http://"+addr+"/stub_status", Options{MaxBodySize: 4096})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		deadline, _ := ctx.Deadline()
		_, err := c.Fetch(ctx)
		left := time.Until(deadline)
		cancel()
		c.Close()
		// Draining the body would last until the deadline; the refusal comes at the header.
		if err == nil || fetch.ReasonOf(err) == fetch.ReasonTimeout || left < 8*time.Second {
			t.Errorf("%q: %v with %v of the 10s left; want the refusal at once", head, err, left)
		}
	}
}

// Bytes after an answer's body (a wrong Content-Length, an answer nobody asked for) are not
// taken for the next answer: the connection is not kept.
func TestDirectTrailingBytesNotKept(t *testing.T) {
	stale := "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nnot nginx"
	addr, conns := rawServer(t, false, func(int) string { return okAnswer("") + stale })
	c := directClient(t, "http://"+addr+"/stub_status", Options{})
	for i := range 3 {
		st, err := fetchTimeout(c, 5*time.Second)
		if err != nil || st != idleStatus {
			t.Fatalf("fetch %d: %+v %v", i, st, err)
		}
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("%d connections, want 3 (none kept with bytes after the body)", n)
	}
}
