package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/prometheus/common/promslog"

	"github.com/wsgi-exporter/wsgi_exporter/collector"
)

// recorder is a slog handler that keeps each record's level and message.
type recorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec)
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

// count returns how many records at level have a message starting with prefix.
func (r *recorder) count(level slog.Level, prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, rec := range r.recs {
		if rec.Level == level && strings.HasPrefix(rec.Message, prefix) {
			n++
		}
	}
	return n
}

// goneClient is a response writer whose client hung up: every write fails as the server's
// connection does then.
type goneClient struct {
	header http.Header
	code   int
}

func (g *goneClient) Header() http.Header  { return g.header }
func (g *goneClient) WriteHeader(code int) { g.code = code }
func (g *goneClient) Write([]byte) (int, error) {
	return 0, &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)}
}

// A scraper that goes away mid-response makes every metric family fail to send: that is the
// client's doing and is logged at debug level, not as one ERROR line per family.
func TestMetricsClientGoneLogsDebug(t *testing.T) {
	exp, err := collector.New(nil, collector.Options{Logger: promslog.NewNopLogger()})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	mux, err := newMux(exp, slog.New(rec), "/metrics", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	mux.ServeHTTP(&goneClient{header: http.Header{}}, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	const msg = "error encoding and sending metric family:"
	if n := rec.count(slog.LevelError, msg); n != 0 {
		t.Fatalf("%d ERROR lines %q, want none", n, msg)
	}
	if n := rec.count(slog.LevelDebug, msg); n < 2 {
		t.Fatalf("%d debug lines %q, want one per metric family", n, msg)
	}
}

// Everything else promhttp reports stays an error: a failed gathering above all.
func TestPromhttpLoggerLevels(t *testing.T) {
	rec := &recorder{}
	l := promhttpLogger{slog.New(rec)}
	epipe := &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)}
	reset := &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.ECONNRESET)}
	for _, c := range []struct {
		args  []any
		level slog.Level
	}{
		{[]any{"error encoding and sending metric family:", epipe}, slog.LevelDebug},
		{[]any{"error encoding and sending metric family:", fmt.Errorf("flushing: %w", reset)}, slog.LevelDebug},
		{[]any{"error gathering metrics:", errors.New("collected metric x was collected before")}, slog.LevelError},
		{[]any{"error gathering metrics:", epipe}, slog.LevelError},
		{[]any{"error encoding and sending metric family:", errors.New("invalid metric name")}, slog.LevelError},
		{[]any{"error getting writer", errors.New("gzip: invalid compression level")}, slog.LevelError},
	} {
		rec.recs = nil
		l.Println(c.args...)
		if len(rec.recs) != 1 {
			t.Fatalf("%v: %d records", c.args, len(rec.recs))
		}
		r := rec.recs[0]
		want := fmt.Sprint(c.args[0], " ", c.args[1])
		if r.Level != c.level || r.Message != want {
			t.Errorf("%v: logged %s %q, want %s %q", c.args, r.Level, r.Message, c.level, want)
		}
	}
}
