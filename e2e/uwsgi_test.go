package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wsgi-exporter/wsgi_exporter/uwsgi"
)

// uwsgiApp is the WSGI application the uWSGI instances serve: / answers at once, /slow
// sleeps QUERY_STRING seconds, /error raises.
const uwsgiApp = `import time

def application(env, start_response):
    path = env.get('PATH_INFO', '/')
    if path.startswith('/slow'):
        time.sleep(float(env.get('QUERY_STRING') or '1'))
    elif path == '/error':
        raise RuntimeError('boom')
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'ok\n']
`

const uwsgiWorkers = 4

// uwsgiInstance is a real uWSGI master with 4 workers on loopback.
type uwsgiInstance struct {
	name    string
	dir     string
	httpURL string   // the application
	uri     string   // the stats address given to the exporter
	read    string   // the stats address the test reads directly
	args    []string // command line, to restart on the same addresses
	proc    *Process
}

// uwsgiStart starts uWSGI with the given stats arguments; stats is the address the
// exporter reads, read the one the test reads (they differ for --stats-http).
func uwsgiStart(t *testing.T, name, uri, read string, statsArgs ...string) *uwsgiInstance {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.py"), []byte(uwsgiApp), 0o644); err != nil {
		t.Fatal(err)
	}
	port := FreePort(t)
	in := &uwsgiInstance{name: name, dir: dir, uri: uri, read: read, httpURL: fmt.Sprintf("http://127.0.0.1:%d", port)}
	in.args = append([]string{"--plugin", "python3", "--master", "--die-on-term", "--disable-logging",
		"--processes", fmt.Sprint(uwsgiWorkers), "--http-socket", fmt.Sprintf("127.0.0.1:%d", port),
		"--wsgi-file", "app.py", "--chdir", dir}, statsArgs...)
	in.start(t)
	return in
}

func (in *uwsgiInstance) start(t *testing.T) {
	t.Helper()
	in.proc = Start(t, in.dir, nil, "uwsgi", in.args...)
}

// stats reads the instance's stats document directly.
func (in *uwsgiInstance) stats() (*uwsgi.Stats, error) {
	a, err := uwsgi.ParseAddress(in.read)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return uwsgi.NewClient(a, uwsgi.ClientOptions{}).Stats(ctx)
}

// waitReady waits until every worker runs and accepts requests.
func (in *uwsgiInstance) waitReady(t *testing.T) *uwsgi.Stats {
	t.Helper()
	var st *uwsgi.Stats
	WaitFor(t, 30*time.Second, in.name+" uWSGI ready", func() bool {
		if in.proc.Exited() {
			t.Fatalf("uWSGI %s exited:\n%s", in.name, in.proc.Output())
		}
		s, err := in.stats()
		if err != nil || len(s.Workers) != uwsgiWorkers {
			return false
		}
		for _, w := range s.Workers {
			if w.PID <= 0 || w.Accepting != 1 {
				return false
			}
		}
		st = s
		return true
	})
	return st
}

// uwsgiSum adds up a metric of one source.
func uwsgiSum(m Metrics, name, uri string) float64 {
	return m.Sum(name, map[string]string{"stats_uri": uri})
}

// uwsgiGetErrors sends n requests to /error; uWSGI closes the connection without an
// answer when the application raises, so the outcome is not checked.
func uwsgiGetErrors(url string, n int) {
	c := &http.Client{Timeout: 10 * time.Second}
	for i := 0; i < n; i++ {
		if resp, err := c.Get(url + "/error"); err == nil {
			resp.Body.Close()
		}
	}
}

func TestUWSGI(t *testing.T) {
	RequireCommand(t, "uwsgi")
	if _, err := os.Stat("/usr/lib/uwsgi/plugins/python3_plugin.so"); err != nil {
		t.Fatalf("the uWSGI python3 plugin is required (Debian package uwsgi-plugin-python3): %v", err)
	}

	tcpPort := FreePort(t)
	tcpAddr := fmt.Sprintf("127.0.0.1:%d", tcpPort)
	sockDir := t.TempDir()
	sock := filepath.Join(sockDir, "stats.sock")
	httpStats := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	instances := []*uwsgiInstance{
		uwsgiStart(t, "tcp", "tcp://"+tcpAddr, "tcp://"+tcpAddr, "--stats", tcpAddr),
		uwsgiStart(t, "unix", "unix://"+sock, "unix://"+sock, "--stats", sock),
		uwsgiStart(t, "http", "http://"+httpStats+"/", "http://"+httpStats+"/", "--stats", httpStats, "--stats-http"),
	}
	tcp, unix, httpInst := instances[0], instances[1], instances[2]
	for _, in := range instances {
		in.waitReady(t)
	}
	fixture, err := filepath.Abs("../fixtures/uwsgi/unix_4workers_2threads_metrics_after_load.json")
	if err != nil {
		t.Fatal(err)
	}
	// The unix instance is configured through a glob (one socket per Emperor vassal): it
	// expands at every scrape into a source named by the socket's own URI.
	args := []string{"--uwsgi.collect-cores", "--uwsgi.stats-uri=file://" + fixture,
		"--uwsgi.stats-uri=" + tcp.uri, "--uwsgi.stats-uri=unix://" + sockDir + "/*.sock", "--uwsgi.stats-uri=" + httpInst.uri}
	x := StartExporter(t, args...)

	m := x.Scrape(t)
	for _, in := range instances {
		if got := m.Get(t, "uwsgi_up", map[string]string{"stats_uri": in.uri}); got != 1 {
			t.Fatalf("%s: uwsgi_up = %v", in.name, got)
		}
		if got := m.Get(t, "uwsgi_workers", map[string]string{"stats_uri": in.uri}); got != uwsgiWorkers {
			t.Fatalf("%s: uwsgi_workers = %v", in.name, got)
		}
	}
	PromtoolCheck(t, m.Raw)

	t.Run("requests are counted exactly", func(t *testing.T) {
		before := x.Scrape(t)
		sent := map[*uwsgiInstance]int{tcp: 23, unix: 17, httpInst: 11}
		const errors = 3
		for in, n := range sent {
			HTTPGetN(t, in.httpURL+"/", n, 200)
		}
		uwsgiGetErrors(tcp.httpURL, errors)
		want := map[*uwsgiInstance]float64{tcp: 23 + errors, unix: 17, httpInst: 11}
		var after Metrics
		WaitFor(t, 10*time.Second, "request counters", func() bool {
			after = x.Scrape(t)
			for in, n := range want {
				if uwsgiSum(after, "uwsgi_worker_requests_total", in.uri)-uwsgiSum(before, "uwsgi_worker_requests_total", in.uri) < n {
					return false
				}
			}
			return true
		})
		for in, n := range want {
			for _, name := range []string{"uwsgi_worker_requests_total", "uwsgi_worker_app_requests_total", "uwsgi_worker_core_requests_total"} {
				if d := uwsgiSum(after, name, in.uri) - uwsgiSum(before, name, in.uri); d != n {
					t.Errorf("%s: %s grew by %v, want exactly %v", in.name, name, d, n)
				}
			}
		}
		for _, name := range []string{"uwsgi_worker_exceptions_total", "uwsgi_worker_app_exceptions_total"} {
			if d := uwsgiSum(after, name, tcp.uri) - uwsgiSum(before, name, tcp.uri); d != errors {
				t.Errorf("tcp: %s grew by %v, want %d", name, d, errors)
			}
		}
	})

	t.Run("busy workers", func(t *testing.T) {
		const busy = 3
		var wg sync.WaitGroup
		for i := 0; i < busy; i++ {
			// A control byte in the path: uWSGI writes it raw into the stats JSON
			// (cores[].vars), which strict JSON parsers reject.
			wg.Go(func() { HTTPGetN(t, unix.httpURL+"/slow%01?2", 1, 200) })
		}
		var m Metrics
		WaitFor(t, 10*time.Second, "3 busy workers", func() bool {
			m = x.Scrape(t)
			return uwsgiSum(m, "uwsgi_worker_busy", unix.uri) == busy
		})
		// The same scrape that shows 3 busy workers shows the fourth idle.
		if idle := uwsgiSum(m, "uwsgi_worker_idle", unix.uri); idle != uwsgiWorkers-busy {
			t.Errorf("idle workers = %v, want %d", idle, uwsgiWorkers-busy)
		}
		for st, want := range map[string]float64{"busy": busy, "idle": uwsgiWorkers - busy, "cheap": 0, "pause": 0, "sig": 0, "unknown": 0} {
			if got := m.Sum("uwsgi_worker_status", map[string]string{"stats_uri": unix.uri, "status": st}); got != want {
				t.Errorf("uwsgi_worker_status{status=%q} sums to %v, want %v", st, got, want)
			}
		}
		if got := m.Sum("uwsgi_worker_core_busy", map[string]string{"stats_uri": unix.uri}); got != busy {
			t.Errorf("uwsgi_worker_core_busy sums to %v, want %d", got, busy)
		}
		wg.Wait()
	})

	t.Run("killed worker is respawned", func(t *testing.T) {
		st, err := httpInst.stats()
		if err != nil {
			t.Fatal(err)
		}
		w := st.Workers[1]
		id := fmt.Sprint(w.ID)
		labels := map[string]string{"stats_uri": httpInst.uri, "worker_id": id}
		before := x.Scrape(t).Get(t, "uwsgi_worker_respawn_count_total", labels)
		if before != float64(w.RespawnCount) {
			t.Fatalf("exported respawn count %v, stats say %d", before, w.RespawnCount)
		}
		if err := syscall.Kill(int(w.PID), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		WaitFor(t, 20*time.Second, "worker respawned", func() bool {
			return x.Scrape(t).Get(t, "uwsgi_worker_respawn_count_total", labels) >= before+1
		})
		if got := x.Scrape(t).Get(t, "uwsgi_worker_respawn_count_total", labels); got != before+1 {
			t.Fatalf("respawn count %v, want %v", got, before+1)
		}
		httpInst.waitReady(t)
	})

	t.Run("stopped instance is down, others still served", func(t *testing.T) {
		tcp.proc.Stop()
		m := x.Scrape(t) // asserts 200
		if got := m.Get(t, "uwsgi_up", map[string]string{"stats_uri": tcp.uri}); got != 0 {
			t.Fatalf("stopped instance: uwsgi_up = %v", got)
		}
		if got := m.Get(t, "wsgi_exporter_scrape_errors_total", map[string]string{"kind": "uwsgi", "source": tcp.uri, "reason": "connect"}); got < 1 {
			t.Fatalf("connect errors = %v", got)
		}
		if n := m.Count("uwsgi_worker_requests_total", map[string]string{"stats_uri": tcp.uri}); n != 0 {
			t.Fatalf("%d worker series for a stopped instance", n)
		}
		for _, in := range []*uwsgiInstance{unix, httpInst} {
			if got := m.Get(t, "uwsgi_up", map[string]string{"stats_uri": in.uri}); got != 1 {
				t.Fatalf("%s: uwsgi_up = %v while another instance is down", in.name, got)
			}
			if got := m.Get(t, "uwsgi_workers", map[string]string{"stats_uri": in.uri}); got != uwsgiWorkers {
				t.Fatalf("%s: uwsgi_workers = %v", in.name, got)
			}
		}
		tcp.start(t)
		tcp.waitReady(t)
		WaitFor(t, 10*time.Second, "recovery", func() bool {
			return x.Scrape(t).Get(t, "uwsgi_up", map[string]string{"stats_uri": tcp.uri}) == 1
		})
		m = x.Scrape(t)
		if got := m.Get(t, "uwsgi_workers", map[string]string{"stats_uri": tcp.uri}); got != uwsgiWorkers {
			t.Fatalf("after restart: uwsgi_workers = %v", got)
		}
		PromtoolCheck(t, m.Raw)
	})
}
