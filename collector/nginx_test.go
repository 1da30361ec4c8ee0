package collector

import (
	"bytes"
	"context"
	"flag"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/wsgi-exporter/wsgi_exporter/nginx"
)

// nginxUpdating reports -update: rewrite fixtures/nginx/expected/*.prom
// (go test ./collector/ -run TestNginxGolden -update).
var nginxUpdating = func() func() bool {
	if f := flag.Lookup("update"); f != nil {
		return func() bool { return f.Value.String() == "true" }
	}
	b := flag.Bool("update", false, "rewrite golden files")
	return func() bool { return *b }
}()

const nginxFixtures = "../fixtures/nginx"

// serveNginxFixture serves a captured stub_status body on a unix socket.
func serveNginxFixture(t testing.TB, body []byte) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "nginx.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(body)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return sock
}

// nginxExposition scrapes sources through the shared machinery and returns the exposition
// without the scrape duration (it varies) and the dropped-series counters (checked elsewhere).
func nginxExposition(t testing.TB, srcs ...Source) string {
	t.Helper()
	exp, err := New(srcs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fams, err := exp.Gatherer(context.Background(), 0).Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range fams {
		switch f.GetName() {
		case "wsgi_exporter_scrape_duration_seconds", "wsgi_exporter_series_dropped_total":
			continue
		}
		if err := enc.Encode(f); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

func TestNginxGolden(t *testing.T) {
	for _, name := range []string{"stub_status_idle_http", "stub_status_after_load_unix", "tengine_stub_status"} {
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join(nginxFixtures, name+".txt"))
			if err != nil {
				t.Fatal(err)
			}
			sock := serveNginxFixture(t, body)
			src, err := NewNginx(Config{Address: "unix:" + sock + ":/stub_status", Name: "fixture", Timeout: 5 * time.Second}, NginxOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got := nginxExposition(t, src)
			golden := filepath.Join(nginxFixtures, "expected", name+".prom")
			if nginxUpdating() {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Fatalf("exposition differs from %s:\n%s", golden, got)
			}
		})
	}
}

// TestNginxValues checks the numbers of a fixture one by one, independent of the golden file.
func TestNginxValues(t *testing.T) {
	body, err := os.ReadFile(filepath.Join(nginxFixtures, "stub_status_during_load_http.txt"))
	if err != nil {
		t.Fatal(err)
	}
	sock := serveNginxFixture(t, body)
	src, err := NewNginx(Config{Address: "unix://" + sock + "?path=/stub_status", Timeout: 5 * time.Second}, NginxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := nginxExposition(t, src)
	label := `{source="unix://` + sock + `?path=/stub_status"}`
	for _, line := range []string{
		"nginx_up" + label + " 1",
		"nginx_connections_active" + label + " 106",
		"nginx_connections_accepted" + label + " 2468",
		"nginx_connections_handled" + label + " 2468",
		"nginx_http_requests_total" + label + " 1.763635e+06",
		"nginx_connections_reading" + label + " 0",
		"nginx_connections_writing" + label + " 1",
		"nginx_connections_waiting" + label + " 105",
		"# TYPE nginx_connections_accepted untyped",
		"# TYPE nginx_connections_handled untyped",
		"# TYPE nginx_http_requests_total counter",
		"# TYPE nginx_connections_active gauge",
		"# HELP nginx_http_requests_total Total http requests",
	} {
		if !strings.Contains(got, line+"\n") {
			t.Errorf("missing %q in\n%s", line, got)
		}
	}
	if strings.Contains(got, "request_time") {
		t.Errorf("nginx (not Tengine) page exports request time:\n%s", got)
	}
}

func TestNginxDownKeepsNoNumbers(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "gone.sock")
	src, err := NewNginx(Config{Address: "unix:" + sock, Name: "gone", Timeout: time.Second}, NginxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := nginxExposition(t, src)
	for _, want := range []string{
		`nginx_up{source="gone"} 0`,
		`wsgi_exporter_scrape_errors_total{kind="nginx",reason="connect",source="gone"} 1`,
	} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	if strings.Contains(got, "nginx_connections") {
		t.Errorf("a down source exports numbers:\n%s", got)
	}
}

func TestNewNginxRejectsBadAddress(t *testing.T) {
	if _, err := NewNginx(Config{Address: "ftp://x/"}, NginxOptions{}); err == nil {
		t.Fatal("accepted ftp://")
	}
}

func TestNginxTarget(t *testing.T) {
	a, _ := NewNginx(Config{Address: "unix:/run/n.sock:/s"}, NginxOptions{})
	b, _ := NewNginx(Config{Address: "unix:///run/n.sock?path=/s"}, NginxOptions{})
	ta, _ := NginxTarget(a)
	tb, ok := NginxTarget(b)
	if !ok || ta != tb || ta != "unix:///run/n.sock?path=%2Fs" {
		t.Fatalf("%q %q", ta, tb)
	}
}

// BenchmarkNginxScrape measures the CPU work of one scrape: parse a captured page and build
// its metrics (the HTTP round trip is left out).
func BenchmarkNginxScrape(b *testing.B) {
	body, err := os.ReadFile(filepath.Join(nginxFixtures, "stub_status_after_load_http.txt"))
	if err != nil {
		b.Fatal(err)
	}
	src := &nginxSource{cfg: Config{Kind: "nginx", Address: "http://127.0.0.1:8080/stub_status"}}
	b.ReportAllocs()
	for b.Loop() {
		st, err := nginx.ParseStubStatus(body)
		if err != nil {
			b.Fatal(err)
		}
		w := testWriter(src)
		nginxTranslate(w, st)
		assemble(nil, []*sourceOut{{src: src, w: w}})
	}
}
