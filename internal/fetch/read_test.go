package fetch

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

func TestReadAllLimit(t *testing.T) {
	b, err := ReadAll(strings.NewReader("12345"), 5)
	if err != nil || string(b) != "12345" {
		t.Fatalf("at the limit: %q, %v", b, err)
	}
	_, err = ReadAll(strings.NewReader("123456"), 5)
	if ReasonOf(err) != ReasonTooLarge {
		t.Fatalf("over the limit: reason %q (%v), want too_large", ReasonOf(err), err)
	}
}

// A peer that accepts and never writes costs the deadline and is reported as a timeout, not a
// read error, whichever of the socket deadline and the context notices first.
func TestReadConnHungPeerIsTimeout(t *testing.T) {
	for i := 0; i < 20; i++ {
		server, client := net.Pipe()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		start := time.Now()
		_, err := ReadConn(ctx, client, 1<<20)
		cancel()
		server.Close()
		if ReasonOf(err) != ReasonTimeout {
			t.Fatalf("run %d: reason %q (%v), want timeout", i, ReasonOf(err), err)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("run %d: %v does not wrap context.DeadlineExceeded", i, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("run %d: took %v", i, d)
		}
	}
}

func TestReadConnBrokenPeerIsRead(t *testing.T) {
	server, client := net.Pipe()
	go func() {
		_, _ = server.Write([]byte("partial"))
		server.Close()
	}()
	b, err := ReadConn(context.Background(), client, 1<<20)
	if err != nil || string(b) != "partial" {
		t.Fatalf("EOF after data: %q, %v", b, err)
	}
}

func TestReasonOf(t *testing.T) {
	cases := map[string]error{
		ReasonTimeout:  context.DeadlineExceeded,
		ReasonDecode:   Errorf(ReasonDecode, "bad"),
		ReasonOther:    errors.New("x"),
		ReasonTooLarge: Wrap(ReasonTooLarge, Errorf(ReasonTooLarge, "y")),
	}
	for want, err := range cases {
		if got := ReasonOf(err); got != want {
			t.Errorf("ReasonOf(%v) = %q, want %q", err, got, want)
		}
	}
	if ReasonOf(nil) != "" || Wrap(ReasonRead, nil) != nil {
		t.Error("nil error must stay nil / unclassified")
	}
	if _, err := net.Dial("tcp", "127.0.0.1:1"); ReasonOf(err) != ReasonConnect {
		t.Errorf("refused dial: reason %q", ReasonOf(err))
	}
}
