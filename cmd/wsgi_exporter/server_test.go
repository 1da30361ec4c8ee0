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

// TestLimitListenerSharesOneLimit: two listeners sharing a limit of 2 accept 2 connections
// in all; the third waits until one closes; Close ends a waiting Accept.
func TestLimitListenerSharesOneLimit(t *testing.T) {
	sem := make(chan struct{}, 2)
	var ls []*limitListener
	for i := 0; i < 2; i++ {
		inner, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, &limitListener{Listener: inner, sem: sem, done: make(chan struct{})})
		defer ls[i].Close()
	}
	dial := func(l net.Listener) net.Conn {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	accepted := make(chan net.Conn, 4)
	for _, l := range ls {
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				accepted <- c
			}
		}()
	}
	dial(ls[0])
	dial(ls[1])
	first := <-accepted
	<-accepted
	dial(ls[0])
	select {
	case <-accepted:
		t.Fatal("a third connection was accepted over the limit of 2")
	case <-time.After(300 * time.Millisecond):
	}
	first.Close()
	first.Close() // a second Close gives back nothing more
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting connection was not accepted after one closed")
	}
	if len(sem) != 2 {
		t.Fatalf("%d places taken, want 2", len(sem))
	}
	done := make(chan error, 1)
	go func() { _, err := ls[1].Accept(); done <- err }()
	time.Sleep(50 * time.Millisecond)
	ls[1].Close()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "closed") {
			t.Fatalf("Accept after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end a waiting Accept")
	}
}
