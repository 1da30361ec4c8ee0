package uwsgi

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jarcoal/httpmock"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

const fixtures = "../fixtures/uwsgi"

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// serve answers every connection on l with handle, until the test ends.
func serve(t testing.TB, l net.Listener, handle func(net.Conn)) {
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
}

func tcpListener(t testing.TB) net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func unixListener(t testing.TB) (net.Listener, string) {
	p := filepath.Join(t.TempDir(), "stats.sock")
	l, err := net.Listen("unix", p)
	if err != nil {
		t.Fatal(err)
	}
	return l, p
}

func writeDoc(doc []byte) func(net.Conn) {
	return func(c net.Conn) { _, _ = c.Write(doc) }
}

// hang never answers: it holds the connection until the peer goes away.
func hang(c net.Conn) { _, _ = io.Copy(io.Discard, c) }

// endless writes a stats document that never ends until the peer goes away.
func endless(c net.Conn) { _, _ = io.Copy(c, endlessDoc()) }

// endlessDoc is a stats document that never ends: {"workers":[{},{},{},…
func endlessDoc() io.Reader {
	return io.MultiReader(strings.NewReader(`{"workers":[{}`), &repeatReader{s: ",{}"})
}

// repeatReader repeats s forever.
type repeatReader struct {
	s   string
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.s[r.off]
		r.off = (r.off + 1) % len(r.s)
	}
	return len(p), nil
}

func fetchReason(t testing.TB, addr string, maxSize int64, timeout time.Duration) (*Stats, error) {
	t.Helper()
	a, err := ParseAddress(addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return NewClient(a, ClientOptions{MaxSize: maxSize}).Stats(ctx)
}

func wantReason(t testing.TB, err error, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want reason %s", reason)
	}
	if got := fetch.ReasonOf(err); got != reason {
		t.Fatalf("reason %q, want %q (err: %v)", got, reason, err)
	}
}

func TestStreamTransports(t *testing.T) {
	doc := fixture(t, "tcp_4workers_cache_after_load.json")
	type peer struct {
		name string
		addr func(t *testing.T, handle func(net.Conn)) string
	}
	peers := []peer{
		{"tcp", func(t *testing.T, h func(net.Conn)) string {
			l := tcpListener(t)
			serve(t, l, h)
			return "tcp://" + l.Addr().String()
		}},
		{"bare", func(t *testing.T, h func(net.Conn)) string {
			l := tcpListener(t)
			serve(t, l, h)
			return l.Addr().String() // 127.0.0.1:port, an IP literal
		}},
		{"unix", func(t *testing.T, h func(net.Conn)) string {
			l, p := unixListener(t)
			serve(t, l, h)
			return "unix://" + p
		}},
	}
	for _, p := range peers {
		t.Run(p.name+"/ok", func(t *testing.T) {
			st, err := fetchReason(t, p.addr(t, writeDoc(doc)), 0, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			var sum uint64
			for _, w := range st.Workers {
				sum += w.Requests
			}
			// 32471 + 38562 + 27160 + 27279 in the fixture.
			if len(st.Workers) != 4 || sum != 125472 || st.Caches[0].Full != 51 {
				t.Fatalf("workers %d, requests %d, cache %+v", len(st.Workers), sum, st.Caches)
			}
		})
		t.Run(p.name+"/never-answers", func(t *testing.T) {
			_, err := fetchReason(t, p.addr(t, hang), 0, 200*time.Millisecond)
			wantReason(t, err, fetch.ReasonTimeout)
		})
		t.Run(p.name+"/endless", func(t *testing.T) {
			_, err := fetchReason(t, p.addr(t, endless), 1<<20, 10*time.Second)
			wantReason(t, err, fetch.ReasonTooLarge)
		})
		t.Run(p.name+"/truncated", func(t *testing.T) {
			_, err := fetchReason(t, p.addr(t, writeDoc(doc[:len(doc)/2])), 0, 5*time.Second)
			wantReason(t, err, fetch.ReasonDecode)
		})
	}
}

func TestStreamConnectErrors(t *testing.T) {
	l := tcpListener(t)
	addr := l.Addr().String()
	l.Close()
	_, err := fetchReason(t, "tcp://"+addr, 0, 5*time.Second)
	wantReason(t, err, fetch.ReasonConnect)
	_, err = fetchReason(t, "unix://"+filepath.Join(t.TempDir(), "missing.sock"), 0, 5*time.Second)
	wantReason(t, err, fetch.ReasonConnect)
}

func TestHTTPTransport(t *testing.T) {
	doc := fixture(t, "stats_http_4workers_after_load.json")
	const url = "http://127.0.0.1:19192/"
	client := func(t *testing.T, r httpmock.Responder, maxSize int64) *Client {
		mt := httpmock.NewMockTransport()
		mt.RegisterResponder(http.MethodGet, url, r)
		a, err := ParseAddress(url)
		if err != nil {
			t.Fatal(err)
		}
		c := NewClient(a, ClientOptions{MaxSize: maxSize})
		c.SetHTTPTransport(mt)
		return c
	}
	ctx := func(d time.Duration) context.Context {
		c, cancel := context.WithTimeout(context.Background(), d)
		t.Cleanup(cancel)
		return c
	}

	st, err := client(t, httpmock.NewBytesResponder(200, doc), 0).Stats(ctx(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Workers) != 4 || st.Version != "2.0.21-debian" {
		t.Fatalf("%v", st)
	}

	_, err = client(t, httpmock.NewStringResponder(503, "busy"), 0).Stats(ctx(5 * time.Second))
	wantReason(t, err, fetch.ReasonHTTPStatus)
	if !strings.Contains(err.Error(), "503") {
		t.Fatalf("error does not name the status: %v", err)
	}

	_, err = client(t, httpmock.NewBytesResponder(200, doc[:100]), 0).Stats(ctx(5 * time.Second))
	wantReason(t, err, fetch.ReasonDecode)

	big, _ := io.ReadAll(io.LimitReader(endlessDoc(), 2<<20))
	_, err = client(t, httpmock.NewBytesResponder(200, big), 1<<20).Stats(ctx(5 * time.Second))
	wantReason(t, err, fetch.ReasonTooLarge)

	// A body that never ends, without Content-Length.
	endlessBody := func(*http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Status: "200 OK", ContentLength: -1, Body: io.NopCloser(endlessDoc()), Header: http.Header{}}, nil
	}
	_, err = client(t, endlessBody, 1<<20).Stats(ctx(5 * time.Second))
	wantReason(t, err, fetch.ReasonTooLarge)

	// A server that never answers: the deadline stops the request.
	hangs := func(r *http.Request) (*http.Response, error) {
		<-r.Context().Done()
		return nil, r.Context().Err()
	}
	_, err = client(t, hangs, 0).Stats(ctx(200 * time.Millisecond))
	wantReason(t, err, fetch.ReasonTimeout)

	_, err = client(t, httpmock.NewErrorResponder(&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}), 0).Stats(ctx(5 * time.Second))
	wantReason(t, err, fetch.ReasonConnect)
}

// TestHTTPRealServer reads the captured --stats-http answer (HTTP/1.0, Connection: close)
// byte for byte from a real listener.
func TestHTTPRealServer(t *testing.T) {
	doc := fixture(t, "stats_http_4workers_idle.json")
	head := strings.ReplaceAll(string(fixture(t, "stats_http_headers.txt")), "\r\n", "\n")
	head = strings.ReplaceAll(strings.TrimRight(head, "\n"), "\n", "\r\n") + "\r\n\r\n"
	l := tcpListener(t)
	serve(t, l, func(c net.Conn) {
		buf := make([]byte, 4096)
		_, _ = c.Read(buf)
		_, _ = c.Write([]byte(head))
		_, _ = c.Write(doc)
	})
	st, err := fetchReason(t, "http://"+l.Addr().String()+"/", 0, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Workers) != 4 {
		t.Fatalf("%v", st)
	}
}

func TestFileTransport(t *testing.T) {
	abs, err := filepath.Abs(filepath.Join(fixtures, "unix_cheaper_memory_report.json"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := fetchReason(t, "file://"+abs, 0, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Workers) != 4 || st.Workers[0].RSS != 11378688 || st.Workers[1].Status != StatusCheap {
		t.Fatalf("%+v", st.Workers)
	}
	_, err = fetchReason(t, "file://"+filepath.Join(t.TempDir(), "missing.json"), 0, time.Second)
	wantReason(t, err, fetch.ReasonNotFound)
	_, err = fetchReason(t, "file://"+abs, 100, time.Second)
	wantReason(t, err, fetch.ReasonTooLarge)
	_, err = fetchReason(t, "file://"+t.TempDir(), 0, time.Second)
	if err == nil {
		t.Fatal("a directory was read as a stats file")
	}
}

func TestParseAddress(t *testing.T) {
	for in, want := range map[string]Address{
		"tcp://127.0.0.1:1717":        {Transport: TCP, Host: "127.0.0.1:1717"},
		"127.0.0.1:1717":              {Transport: TCP, Host: "127.0.0.1:1717"},
		"[::1]:1717":                  {Transport: TCP, Host: "[::1]:1717"},
		"localhost:1717":              {Transport: TCP, Host: "localhost:1717"},
		"tcp://[::1]:1717":            {Transport: TCP, Host: "[::1]:1717"},
		"unix:///run/uwsgi/app.sock":  {Transport: Unix, Path: "/run/uwsgi/app.sock"},
		"unix:///run/uwsgi/*.sock":    {Transport: Unix, Path: "/run/uwsgi/*.sock"},
		"http://127.0.0.1:1717/":      {Transport: HTTP, URL: "http://127.0.0.1:1717/"},
		"https://stats.example:443/x": {Transport: HTTP, URL: "https://stats.example:443/x"},
		"file:///tmp/stats.json":      {Transport: File, Path: "/tmp/stats.json"},
	} {
		got, err := ParseAddress(in)
		if err != nil || got != want {
			t.Errorf("ParseAddress(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	if a, _ := ParseAddress("127.0.0.1:1717"); a.String() != "tcp://127.0.0.1:1717" {
		t.Errorf("String() = %q", a.String())
	}
	if a, _ := ParseAddress("unix:///run/uwsgi/*.sock"); !a.IsGlob() {
		t.Error("glob not recognised")
	}
	for _, bad := range []string{"", "1717", "localhost", "udp://x:1", "unix://rel.sock", "unix:///a/[b", "http:///nohost", "file://rel", "tcp://host"} {
		if a, err := ParseAddress(bad); err == nil {
			t.Errorf("ParseAddress(%q) = %+v, want an error", bad, a)
		}
	}
}

func TestDecode(t *testing.T) {
	for _, bad := range []string{"", "   ", "null", "[]", `"x"`, "{", `{"workers":"no"}`, `{"workers":[{"id":-1}]}`, `{} trailing`} {
		_, err := Decode([]byte(bad))
		wantReason(t, err, fetch.ReasonDecode)
	}
	st, err := Decode([]byte(`{"workers":[{"id":3,"status":"sig9"}],"metrics":{"x":{"type":1,"value":-5}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if st.Workers[0].ID != 3 || StatusKind(st.Workers[0].Status) != StatusSig || st.Metrics["x"].Value != -5 || st.Workers[0].Cores != nil {
		t.Fatalf("%+v", st)
	}
	// Large counters survive.
	st, err = Decode([]byte(`{"workers":[{"requests":18446744073709551615}]}`))
	if err != nil || st.Workers[0].Requests != 18446744073709551615 {
		t.Fatalf("%v %v", st, err)
	}
}

func TestStatusKind(t *testing.T) {
	for in, want := range map[string]string{"idle": StatusIdle, "busy": StatusBusy, "cheap": StatusCheap, "pause": StatusPause,
		"sig": StatusSig, "sig1": StatusSig, "sig15": StatusSig, "sigx": "", "": "", "IDLE": ""} {
		if got := StatusKind(in); got != want {
			t.Errorf("StatusKind(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestGlobOnlySockets(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"b.sock", "a.sock"} {
		l, err := net.Listen("unix", filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
	}
	if err := os.WriteFile(filepath.Join(dir, "c.sock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	a, _ := ParseAddress("unix://" + dir + "/*.sock")
	got, err := Glob(a)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Path != filepath.Join(dir, "a.sock") || got[1].String() != "unix://"+filepath.Join(dir, "b.sock") {
		t.Fatalf("%+v", got)
	}
}

// TestDecodeRawControlBytes: uWSGI does not escape most control bytes, so a request for
// /s%01low in progress yields a document strict JSON rejects. It must still decode.
func TestDecodeRawControlBytes(t *testing.T) {
	doc := fixture(t, "unix_4workers_2threads_metrics_busy_slow.json")
	bad := []byte(strings.Replace(string(doc), "PATH_INFO=/slow", "PATH_INFO=/s\x01l\x1fow\\\\\x02", 1))
	if string(bad) == string(doc) {
		t.Fatal("fixture changed: nothing replaced")
	}
	st, err := Decode(bad)
	if err != nil {
		t.Fatal(err)
	}
	busy := 0
	for _, w := range st.Workers {
		if w.Status == StatusBusy {
			busy++
		}
	}
	if busy != 4 || len(st.Workers[0].Cores) != 2 || st.Version != "2.0.21-debian" {
		t.Fatalf("busy %d of %d workers, version %q", busy, len(st.Workers), st.Version)
	}
	// A control byte outside a string is still an error.
	_, err = Decode([]byte("{\"version\":\x01\"2\"}"))
	wantReason(t, err, fetch.ReasonDecode)
}
