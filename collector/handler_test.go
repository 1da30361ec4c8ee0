package collector

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
)

// recorder is a slog handler that keeps each record's level and message.
type recorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.recs = append(r.recs, rec)
	r.mu.Unlock()
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

// count returns how many records of level have a message starting with prefix.
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

// atLeast returns how many records are of level or above.
func (r *recorder) atLeast(level slog.Level) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rec := range r.recs {
		if rec.Level >= level {
			out = append(out, rec.Message)
		}
	}
	return out
}

// goneClient is a response writer whose client hung up: every write fails as the server's
// connection does then.
type goneClient struct {
	header http.Header
	code   int
	writes int
}

func (g *goneClient) Header() http.Header  { return g.header }
func (g *goneClient) WriteHeader(code int) { g.code = code }
func (g *goneClient) Write([]byte) (int, error) {
	g.writes++
	return 0, &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)}
}

// A scraper that goes away mid-response is the client's doing: logged at debug level, not as
// ERROR lines, and the answer stops at the first failed write.
func TestClientGoneLogsDebug(t *testing.T) {
	rec := &recorder{}
	exp, err := New([]Source{fake("a", 1)}, Options{Logger: slog.New(rec)})
	if err != nil {
		t.Fatal(err)
	}
	exp.Registry().MustRegister(collectors.NewGoCollector()) // enough families to need several writes
	g := &goneClient{header: http.Header{}}
	exp.Handler().ServeHTTP(g, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if errs := rec.atLeast(slog.LevelWarn); len(errs) != 0 {
		t.Fatalf("logged above debug level: %q", errs)
	}
	if n := rec.count(slog.LevelDebug, "scraper went away while the answer was written"); n != 1 {
		t.Fatalf("%d debug lines for the gone scraper, want 1", n)
	}
	if g.writes != 1 {
		t.Fatalf("%d writes to a gone client, want 1", g.writes)
	}
}

func TestIsClientGone(t *testing.T) {
	epipe := &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)}
	reset := &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.ECONNRESET)}
	for _, c := range []struct {
		err  error
		gone bool
	}{
		{epipe, true},
		{fmt.Errorf("flushing: %w", reset), true},
		{syscall.EPIPE, true},
		{errors.New("invalid metric name"), false},
		{errAnswerDeadline, false},
	} {
		if got := isClientGone(c.err); got != c.gone {
			t.Errorf("isClientGone(%v) = %v, want %v", c.err, got, c.gone)
		}
	}
}

// The handler answers as promhttp's does for every format and compression a scraper may ask
// for: same status, headers and body.
func TestHandlerMatchesPromhttp(t *testing.T) {
	e := newExporter(t, fake("a", 1), fake("b", 2))
	e.Registry().MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "some_counter_total", Help: "A counter."}))
	ours := e.Handler()
	theirs := promhttp.HandlerFor(e.Gatherer(context.Background(), 0), promhttp.HandlerOpts{EnableOpenMetrics: true})
	for _, accept := range []string{"", "text/plain; version=0.0.4", "application/openmetrics-text; version=1.0.0",
		"application/openmetrics-text; version=0.0.1", "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
		"application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
		"text/plain;version=1.0.0;escaping=allow-utf-8"} {
		for _, enc := range []string{"", "gzip", "gzip, deflate", "identity", "*", "gzip;q=0", "identity;q=0.5, gzip;q=0.8"} {
			get := func(h http.Handler) *httptest.ResponseRecorder {
				r := httptest.NewRequest(http.MethodGet, "/metrics?name[]=fake_up&name[]=fake_value&name[]=some_counter_total", nil)
				if accept != "" {
					r.Header.Set("Accept", accept)
				}
				if enc != "" {
					r.Header.Set("Accept-Encoding", enc)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				return w
			}
			a, b := get(ours), get(theirs)
			what := fmt.Sprintf("Accept %q, Accept-Encoding %q", accept, enc)
			if a.Code != b.Code {
				t.Fatalf("%s: status %d, promhttp %d", what, a.Code, b.Code)
			}
			for _, h := range []string{"Content-Type", "Content-Encoding", "Vary"} {
				if x, y := a.Header().Values(h), b.Header().Values(h); strings.Join(x, "|") != strings.Join(y, "|") {
					t.Fatalf("%s: %s %q, promhttp %q", what, h, x, y)
				}
			}
			if x, y := body(t, a), body(t, b); !bytes.Equal(x, y) {
				t.Fatalf("%s: body\n%q\npromhttp\n%q", what, x, y)
			}
		}
	}
}

// body is a response's body, gunzipped when it says so.
func body(t *testing.T, w *httptest.ResponseRecorder) []byte {
	t.Helper()
	if w.Header().Get("Content-Encoding") != "gzip" {
		return w.Body.Bytes()
	}
	r, err := gzip.NewReader(w.Body)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The handler keeps promhttp's InstrumentMetricHandler metrics itself: requests by status code
// (200, 500 and 503 from the start; the answer's own request counted after it), the requests
// in flight (the answer's own included) and its errors by cause.
func TestHandlerCountsLikePromhttp(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	slow := false
	src := fake("a", 1)
	src.fn = func(context.Context) error {
		if slow {
			entered <- struct{}{}
			<-release
		}
		return nil
	}
	src.cfg.Timeout = time.Minute
	e, err := New([]Source{src}, Options{MaxRequestsInFlight: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	get := func() (int, string) {
		resp, err := http.Get(srv.URL + "?name[]=promhttp_metric_handler_requests_total&name[]=promhttp_metric_handler_requests_in_flight&name[]=promhttp_metric_handler_errors_total")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for range 3 {
		get()
	}
	slow = true
	done := make(chan int)
	go func() { code, _ := get(); done <- code }()
	<-entered
	if code, _ := get(); code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", code)
	}
	slow = false
	close(release)
	if code := <-done; code != 200 {
		t.Fatalf("status %d", code)
	}
	_, body := get()
	want := `# HELP promhttp_metric_handler_errors_total Total number of internal errors encountered by the promhttp metric handler.
# TYPE promhttp_metric_handler_errors_total counter
promhttp_metric_handler_errors_total{cause="encoding"} 0
promhttp_metric_handler_errors_total{cause="gathering"} 0
# HELP promhttp_metric_handler_requests_in_flight Current number of scrapes being served.
# TYPE promhttp_metric_handler_requests_in_flight gauge
promhttp_metric_handler_requests_in_flight 1
# HELP promhttp_metric_handler_requests_total Total number of scrapes by HTTP status code.
# TYPE promhttp_metric_handler_requests_total counter
promhttp_metric_handler_requests_total{code="200"} 4
promhttp_metric_handler_requests_total{code="500"} 0
promhttp_metric_handler_requests_total{code="503"} 1
`
	if body != want {
		t.Fatalf("got\n%s\nwant\n%s", body, want)
	}
}

// The remembered negotiation is expfmt's, and what is remembered is bounded: a long Accept
// header is negotiated every time, not kept.
func TestNegotiateRemembersBounded(t *testing.T) {
	long := "text/plain;version=0.0.4;" + strings.Repeat("x=y;", 200)
	for _, accept := range []string{"", "application/openmetrics-text; version=1.0.0", "text/plain;version=1.0.0;escaping=allow-utf-8", long} {
		h := http.Header{}
		if accept != "" {
			h.Set("Accept", accept)
		}
		want := expfmt.NegotiateAccept(h, expfmt.DefaultOpenMetricsAcceptedFormats()...)
		for range 2 {
			if got := negotiate(h); got.format != want {
				t.Errorf("Accept %q: %q, expfmt %q", accept, got.format, want)
			}
		}
	}
	negotiations.RLock()
	_, kept := negotiations.m[long]
	n := len(negotiations.m)
	negotiations.RUnlock()
	if kept || n > maxNegotiations {
		t.Errorf("long header kept %v, %d remembered", kept, n)
	}
}
