package e2e

import (
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// multiprocApp is a Flask app that counts its requests with prometheus_client in
// multiprocess mode. Its /naive route is what an in-app exporter without the multiprocess
// collector would serve: only the answering worker's own count.
const multiprocApp = `import os, time
from flask import Flask
from prometheus_client import Counter, Histogram, CollectorRegistry, generate_latest

app = Flask(__name__)
REQUESTS = Counter("mpapp_requests", "Requests served by the test app.", ["path"])
LATENCY = Histogram("mpapp_request_duration_seconds", "Time to answer a request.", ["path"],
                    buckets=(0.0001, 0.001, 0.01, 0.1, 1.0))

@app.route("/")
def index():
    start = time.perf_counter()
    REQUESTS.labels(path="/").inc()
    LATENCY.labels(path="/").observe(time.perf_counter() - start)
    return "ok %d\n" % os.getpid()

@app.route("/naive")
def naive():
    return REQUESTS.labels(path="/")._value.get().__repr__()
`

// multiprocSetup writes the app into a fresh directory and returns it and an empty
// PROMETHEUS_MULTIPROC_DIR.
func multiprocSetup(t *testing.T) (appDir, mpDir string) {
	t.Helper()
	appDir = t.TempDir()
	mpDir = filepath.Join(t.TempDir(), "prom")
	if err := os.Mkdir(mpDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(appDir, "mpapp.py"), []byte(multiprocApp), 0o644); err != nil {
		t.Fatal(err)
	}
	return appDir, mpDir
}

// multiprocChildren lists the children of pid (the server's workers).
func multiprocChildren(t *testing.T, pid int) []int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		t.Fatalf("listing workers of %d: %v", pid, err)
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

func multiprocCounterFiles(t *testing.T, dir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "counter_*.db"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

// multiprocCheck scrapes the exporter and asserts the merged totals.
func multiprocCheck(t *testing.T, x *Exporter, mpDir string, want float64) Metrics {
	t.Helper()
	m := x.Scrape(t)
	if up := m.Get(t, "multiproc_up", map[string]string{"multiproc_dir": mpDir}); up != 1 {
		t.Fatalf("multiproc_up = %v\n%s", up, m.Raw)
	}
	if got := m.Get(t, "mpapp_requests_total", map[string]string{"path": "/"}); got != want {
		t.Fatalf("mpapp_requests_total = %v, want %v\n%s", got, want, m.Raw)
	}
	if got := m.Get(t, "mpapp_request_duration_seconds", map[string]string{"path": "/"}); got != want {
		t.Fatalf("histogram count = %v, want %v", got, want)
	}
	for _, hm := range m.Families["mpapp_request_duration_seconds"].GetMetric() {
		bs := hm.GetHistogram().GetBucket()
		if len(bs) != 6 || !math.IsInf(bs[5].GetUpperBound(), 1) || float64(bs[5].GetCumulativeCount()) != want {
			t.Fatalf("histogram buckets %v: want 6 with +Inf holding %v", bs, want)
		}
	}
	return m
}

func multiprocServe(t *testing.T, port int, n int) {
	t.Helper()
	HTTPGetN(t, fmt.Sprintf("http://127.0.0.1:%d/", port), n, 200)
}

func multiprocWaitUp(t *testing.T, p *Process, port int) {
	t.Helper()
	WaitFor(t, 30*time.Second, "the app to answer", func() bool {
		if p.Exited() {
			t.Fatalf("server exited early:\n%s", p.Output())
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

// TestMultiprocGunicorn: 4 gunicorn workers count 100 requests; the exporter says 100, a
// restarted worker loses nothing.
func TestMultiprocGunicorn(t *testing.T) {
	RequireCommand(t, "/usr/bin/gunicorn")
	appDir, mpDir := multiprocSetup(t)
	port := FreePort(t)
	g := Start(t, appDir, []string{"PROMETHEUS_MULTIPROC_DIR=" + mpDir}, "/usr/bin/gunicorn",
		"--workers", "4", "--bind", fmt.Sprintf("127.0.0.1:%d", port), "--chdir", appDir, "mpapp:app")
	multiprocWaitUp(t, g, port)
	WaitFor(t, 30*time.Second, "4 workers", func() bool { return len(multiprocChildren(t, g.Cmd.Process.Pid)) == 4 })
	x := StartExporter(t, "--multiproc.dir="+mpDir)

	multiprocServe(t, port, 100)
	m := multiprocCheck(t, x, mpDir, 100)
	PromtoolCheck(t, m.Raw)

	multiprocRestartWorker(t, g.Cmd.Process.Pid, mpDir)
	multiprocCheck(t, x, mpDir, 100)
	multiprocServe(t, port, 60)
	m = multiprocCheck(t, x, mpDir, 160)
	PromtoolCheck(t, m.Raw)
	if files := m.Get(t, "multiproc_files", map[string]string{"type": "counter"}); int(files) != multiprocCounterFiles(t, mpDir) {
		t.Fatalf("multiproc_files{type=counter} = %v, the directory has %d", files, multiprocCounterFiles(t, mpDir))
	}
	if dead := m.Get(t, "multiproc_dead_process_files", map[string]string{"type": "counter"}); dead > 1 {
		t.Fatalf("multiproc_dead_process_files{type=counter} = %v, at most the one restarted worker's", dead)
	}
}

// TestMultiprocUWSGI: the same app under uWSGI with 4 lazy-apps workers; a worker restarted
// (SIGTERM: the master starts another) loses nothing.
func TestMultiprocUWSGI(t *testing.T) {
	RequireCommand(t, "/usr/bin/uwsgi")
	appDir, mpDir := multiprocSetup(t)
	port := FreePort(t)
	u := Start(t, appDir, []string{"PROMETHEUS_MULTIPROC_DIR=" + mpDir}, "/usr/bin/uwsgi",
		"--plugin", "python3", "--master", "--lazy-apps", "--processes", "4",
		"--http-socket", fmt.Sprintf("127.0.0.1:%d", port), "--chdir", appDir,
		"--wsgi-file", filepath.Join(appDir, "mpapp.py"), "--callable", "app",
		"--die-on-term", "--disable-logging")
	multiprocWaitUp(t, u, port)
	x := StartExporter(t, "--gunicorn.multiproc-dir="+mpDir)

	multiprocServe(t, port, 100)
	m := multiprocCheck(t, x, mpDir, 100)
	PromtoolCheck(t, m.Raw)
	multiprocRestartWorker(t, u.Cmd.Process.Pid, mpDir)
	multiprocCheck(t, x, mpDir, 100)
	multiprocServe(t, port, 37)
	m = multiprocCheck(t, x, mpDir, 137)
	PromtoolCheck(t, m.Raw)
	if n := multiprocCounterFiles(t, mpDir); n < 2 {
		t.Fatalf("%d counter files after a restart", n)
	}
}

// multiprocRestartWorker sends SIGTERM to a worker of the server whose pid is master that
// has written a counter file (so its counts must survive it), and waits for its successor.
func multiprocRestartWorker(t *testing.T, master int, mpDir string) {
	t.Helper()
	old := multiprocChildren(t, master)
	victim := 0
	for _, pid := range old {
		if _, err := os.Stat(filepath.Join(mpDir, fmt.Sprintf("counter_%d.db", pid))); err == nil {
			victim = pid
			break
		}
	}
	if victim == 0 {
		t.Fatalf("no worker of %v wrote a counter file in %s", old, mpDir)
	}
	if err := syscall.Kill(victim, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 30*time.Second, "a new worker", func() bool {
		now := multiprocChildren(t, master)
		return len(now) == len(old) && !containsInt(now, victim)
	})
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
