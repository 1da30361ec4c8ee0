package main

import (
	"bytes"
	"log"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// TestServerErrorLogLevels: net/http's accept errors become one warning per 10 s with the
// number left out, TLS handshake failures debug lines, anything else errors; all structured.
func TestServerErrorLogLevels(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}}))
	w := newServerErrorLog(logger)
	now := time.Unix(1000, 0)
	w.now = func() time.Time { return now }
	l := log.New(w, "", 0)
	for i := 0; i < 640; i++ {
		l.Printf("http: Accept error: accept tcp 127.0.0.1:1: accept4: too many open files; retrying in 5ms")
		now = now.Add(5 * time.Millisecond) // 3.2 s in all
	}
	now = now.Add(10 * time.Second)
	l.Printf("http: Accept error: accept tcp 127.0.0.1:1: accept4: too many open files; retrying in 1s")
	l.Printf("http: TLS handshake error from 127.0.0.1:5555: EOF")
	l.Printf("http: panic serving 127.0.0.1:5555: boom")
	want := `level=WARN msg="accepting a connection failed; retrying" err="accept tcp 127.0.0.1:1: accept4: too many open files; retrying in 5ms" similar_errors_not_logged=0
level=WARN msg="accepting a connection failed; retrying" err="accept tcp 127.0.0.1:1: accept4: too many open files; retrying in 1s" similar_errors_not_logged=639
level=DEBUG msg="TLS handshake failed" err="127.0.0.1:5555: EOF"
level=ERROR msg="http server" err="http: panic serving 127.0.0.1:5555: boom"
`
	if buf.String() != want {
		t.Fatalf("log:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func newLimitListeners(t *testing.T, n, limit int) []*limitListener {
	t.Helper()
	sem := make(chan struct{}, limit)
	var ls []*limitListener
	for i := 0; i < n; i++ {
		inner, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l := &limitListener{Listener: inner, sem: sem, done: make(chan struct{})}
		t.Cleanup(func() { l.Close() })
		ls = append(ls, l)
	}
	return ls
}

func dialT(t *testing.T, l net.Listener) {
	t.Helper()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
}

// acceptAll accepts from l until it is closed, sending each connection on out.
func acceptAll(l net.Listener, out chan<- net.Conn) {
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			out <- c
		}
	}()
}

// TestLimitListenerWaits: with a limit of 2, a third connection waits until one of the two
// closes (twice closed, it gives its place back once); Close ends a waiting Accept.
func TestLimitListenerWaits(t *testing.T) {
	l := newLimitListeners(t, 1, 2)[0]
	accepted := make(chan net.Conn, 4)
	acceptAll(l, accepted)
	for i := 0; i < 3; i++ {
		dialT(t, l)
	}
	first := <-accepted
	<-accepted
	select {
	case <-accepted:
		t.Fatal("a third connection was accepted over the limit of 2")
	case <-time.After(300 * time.Millisecond):
	}
	first.Close()
	first.Close()
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting connection was not accepted after one closed")
	}
	if len(l.sem) != 2 {
		t.Fatalf("%d places taken, want 2", len(l.sem))
	}
	done := make(chan error, 1)
	go func() { _, err := l.Accept(); done <- err }()
	time.Sleep(50 * time.Millisecond)
	l.Close()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "closed") {
			t.Fatalf("Accept after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end a waiting Accept")
	}
}

// TestLimitListenerSharesOneLimit: two listeners sharing a limit of 2 never hold more than 2
// connections in all, and serve every client as connections close. (A listener waiting in
// Accept holds a place: with k listeners, one of them may serve at most limit - (k - 1).)
func TestLimitListenerSharesOneLimit(t *testing.T) {
	ls := newLimitListeners(t, 2, 2)
	accepted := make(chan net.Conn, 8)
	for _, l := range ls {
		acceptAll(l, accepted)
	}
	for i := 0; i < 3; i++ {
		dialT(t, ls[0])
		dialT(t, ls[1])
	}
	var open []net.Conn
	for n := 0; n < 6; {
		select {
		case c := <-accepted:
			n++
			open = append(open, c)
			if len(open) > 2 {
				t.Fatalf("%d connections open at once over the shared limit of 2", len(open))
			}
		case <-time.After(300 * time.Millisecond):
			if len(open) == 0 {
				t.Fatalf("%d of 6 accepted, none open: the listeners are stuck", n)
			}
			open[0].Close()
			open = open[1:]
		}
	}
}
