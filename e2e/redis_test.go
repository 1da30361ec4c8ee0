package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsgi-exporter/wsgi_exporter/internal/redistest"
)

// startGPEWriter starts a worker process of gunicorn-prometheus-exporter's Redis layout
// (redisstore/testdata/gpe_writer.py: Debian's python3-redis and python3-prometheus-client).
func startGPEWriter(t testing.TB, srv *redistest.Server, pwFile string, args ...string) *redistest.Writer {
	t.Helper()
	return redistest.StartWriter(t, srv, "../redisstore/testdata/gpe_writer.py", pwFile, args...)
}

// TestRedisStore: the binary against a real redis-server (password, TCP on loopback and the
// unix socket: two sources of one database) and four worker processes writing
// gunicorn-prometheus-exporter's layout. Exact totals; a worker's keys expiring; a corrupt
// entry skipped and counted; Redis stopped (up 0, /metrics still 200) and started again (up
// 1, counters kept); the password and the URL's user nowhere in the answer, the landing page
// or the log.
func TestRedisStore(t *testing.T) {
	RequireCommand(t, redistest.Binary)
	srv := redistest.Start(t, redistest.Options{})
	pwFile := filepath.Join(t.TempDir(), "redis-password")
	if err := os.WriteFile(pwFile, []byte(redistest.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	counts := []int{10, 20, 30}
	var ws []*redistest.Writer
	for _, n := range counts {
		w := startGPEWriter(t, srv, pwFile)
		w.Do(fmt.Sprintf("count %d", n))
		ws = append(ws, w)
	}
	idle := startGPEWriter(t, srv, pwFile, "--ttl", "2")
	idle.Do("count 40")

	tcp, unix := srv.URL(0), srv.UnixURL(0)
	// The TCP URL names the ACL user; the label shows neither user nor password.
	withUser := strings.Replace(tcp, "redis://", "redis://default@", 1)
	x := StartExporter(t, "--redis.url="+withUser, "--redis.url="+unix, "--redis.password-file="+pwFile)
	const total = "gpe_requests_total"
	check := func(m Metrics, want float64) {
		t.Helper()
		for _, u := range []string{tcp, unix} {
			if up := m.Get(t, "multiproc_redis_up", map[string]string{"redis_url": u}); up != 1 {
				t.Fatalf("%s: up %v", u, up)
			}
			lab := map[string]string{"redis_url": u, "path": "/a", "code": "200"}
			if v := m.Get(t, total, lab); v != want {
				t.Errorf("%s: %s = %v, want %v", u, total, v, want)
			}
			if v := m.Get(t, "gpe_latency_seconds", map[string]string{"redis_url": u, "path": "/a"}); v != want {
				t.Errorf("%s: latency count = %v, want %v", u, v, want)
			}
		}
	}
	m := x.Scrape(t)
	check(m, 100)
	for i, w := range append(ws, idle) {
		want := 40.0
		if i < len(counts) {
			want = float64(counts[i])
		}
		if v := m.Get(t, "gpe_last_request", map[string]string{"redis_url": unix, "pid": w.PID}); v != want {
			t.Errorf("pid %s: gpe_last_request = %v, want %v", w.PID, v, want)
		}
	}
	if n := m.Get(t, "multiproc_redis_processes", map[string]string{"redis_url": unix}); n != 4 {
		t.Errorf("processes %v", n)
	}
	// Each writer leaves a bare gauge key (its livesum gauge's first 0).
	if n := m.Get(t, "multiproc_redis_entries_dropped_total", map[string]string{"redis_url": unix, "reason": "no_mode"}); n != 4 {
		t.Errorf("no_mode: %v", n)
	}
	PromtoolCheck(t, m.Raw)
	if !bytes.Contains(m.Raw, []byte("# TYPE gpe_requests_total counter")) || bytes.Count(m.Raw, []byte("# TYPE gpe_requests_total ")) != 1 {
		t.Error("gpe_requests_total is not served as one counter family")
	}

	// The idle worker's keys expire: its counts stay.
	WaitFor(t, 20*time.Second, "the idle worker's keys to expire", func() bool {
		keys, _, err := srv.Client(0).Scan(context.Background(), 0, "gunicorn:*:"+idle.PID+":*", 100000).Result()
		return err == nil && len(keys) == 0
	})
	m = x.Scrape(t)
	check(m, 100)
	if n := m.Count("gpe_last_request", map[string]string{"redis_url": unix, "pid": idle.PID}); n != 0 {
		t.Error("the expired worker's gauge is still served")
	}
	if n := m.Get(t, "multiproc_redis_vanished_entries", map[string]string{"redis_url": unix, "state": "held"}); n != 13 {
		t.Errorf("held entries: %v, want 13", n)
	}

	// A corrupt value: skipped and counted at every scrape, the rest served.
	c := srv.Client(0)
	keys, _, err := c.Scan(context.Background(), 0, "gunicorn:counter:"+ws[0].PID+":metric:*", 100000).Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys of worker %s: %v %v", ws[0].PID, keys, err)
	}
	before := m.Get(t, "multiproc_redis_entries_dropped_total", map[string]string{"redis_url": unix, "reason": "bad_value"})
	for _, k := range keys {
		orig, _ := c.HGet(context.Background(), strings.Replace(k, ":metric:", ":meta:", 1), "original_key").Result()
		if strings.Contains(orig, `"gpe_requests_total"`) {
			c.HSet(context.Background(), k, "value", "ten")
		}
	}
	m = x.Scrape(t)
	if n := m.Get(t, "multiproc_redis_entries_dropped_total", map[string]string{"redis_url": unix, "reason": "bad_value"}); n != before+1 {
		t.Errorf("bad_value: %v, want %v", n, before+1)
	}
	check(m, 100) // the corrupt counter's last good value is kept

	// Redis stops: both sources down, the answer still 200; back (empty): up, totals kept.
	srv.Stop()
	m = x.Scrape(t)
	for _, u := range []string{tcp, unix} {
		if up := m.Get(t, "multiproc_redis_up", map[string]string{"redis_url": u}); up != 0 {
			t.Errorf("%s: up %v with Redis stopped", u, up)
		}
		if n := m.Get(t, "wsgi_exporter_scrape_errors_total", map[string]string{"kind": "multiproc_redis", "source": u, "reason": "connect"}); n < 1 {
			t.Errorf("%s: connect errors %v", u, n)
		}
	}
	if n := m.Count(total, nil); n != 0 {
		t.Errorf("%d %s series served from a stopped Redis", n, total)
	}
	srv.Restart()
	m = x.Scrape(t)
	check(m, 100)

	_, landing := x.Get(t, "/", nil)
	for _, s := range [][]byte{m.Raw, landing, []byte(x.Output())} {
		if bytes.Contains(s, []byte(redistest.Password)) || bytes.Contains(s, []byte("default@")) {
			t.Fatal("the Redis password or user appears in the answer, the landing page or the log")
		}
	}
	if !bytes.Contains(landing, []byte(tcp)) {
		t.Errorf("the landing page does not list %s", tcp)
	}
}
