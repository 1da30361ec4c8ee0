package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// hangListener accepts connections on 127.0.0.1 and never answers: a stats server that hangs.
func hangListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // held open, never written to
		}
	}()
	t.Cleanup(func() {
		l.Close()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// promQuery runs an instant query against a Prometheus server and returns the single value.
func promQuery(base, q string) (float64, int, error) {
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string
		Data   struct {
			Result []struct {
				Value [2]any
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, 0, err
	}
	if r.Status != "success" {
		return 0, 0, fmt.Errorf("query %q: status %s", q, r.Status)
	}
	if len(r.Data.Result) != 1 {
		return 0, len(r.Data.Result), nil
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	return v, 1, err
}

// TestRealPrometheusScrape has a real Prometheus server scrape the exporter with a 2 s scrape
// timeout while one uWSGI source hangs: the exporter must answer within Prometheus' timeout
// (the header wins over the 30 s --scrape.timeout), so the target stays up and the hung source
// reads uwsgi_up 0.
func TestRealPrometheusScrape(t *testing.T) {
	RequireCommand(t, "prometheus")
	hung := hangListener(t)
	x := StartExporter(t, "--scrape.timeout=30s", "--uwsgi.stats-uri=tcp://"+hung)

	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 3s
  scrape_timeout: 2s
scrape_configs:
  - job_name: wsgi
    static_configs:
      - targets: [%q]
`, x.URL[len("http://"):])
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	port := FreePort(t)
	prom := Start(t, dir, nil, "prometheus",
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	var up, uwsgiUp, dur float64
	WaitFor(t, 60*time.Second, "Prometheus to record a scrape of the exporter", func() bool {
		if prom.Exited() {
			t.Fatalf("prometheus exited early:\n%s", prom.Output())
		}
		v, n, err := promQuery(base, `up{job="wsgi"}`)
		if err != nil || n != 1 {
			return false
		}
		up = v
		v, n, err = promQuery(base, `uwsgi_up{job="wsgi"}`)
		if err != nil || n != 1 {
			return false
		}
		uwsgiUp = v
		dur, _, err = promQuery(base, `scrape_duration_seconds{job="wsgi"}`)
		return err == nil
	})
	if up != 1 || uwsgiUp != 0 {
		t.Fatalf("up = %v (want 1: the scrape succeeds), uwsgi_up = %v (want 0: the source hangs)", up, uwsgiUp)
	}
	if dur >= 2 {
		t.Fatalf("scrape took %vs, at or over Prometheus' 2s timeout", dur)
	}
	v, n, err := promQuery(base, `wsgi_exporter_scrape_errors_total{job="wsgi",kind="uwsgi",reason="timeout"}`)
	if err != nil || n != 1 || v < 1 {
		t.Fatalf("timeout errors: value %v, %d series, err %v", v, n, err)
	}
}
