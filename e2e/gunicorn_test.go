package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const gunicornBin = "/usr/bin/gunicorn"

// gunicornApp is the Flask application the gunicorn tests serve. /sleep records which
// worker took it before holding that worker.
const gunicornApp = `import os, time
from flask import Flask, request

app = Flask(__name__)
HERE = os.path.dirname(os.path.abspath(__file__))

@app.route("/")
def index():
    return "ok"

@app.route("/boom")
def boom():
    raise RuntimeError("boom")

@app.route("/sleep")
def sleep():
    tmp = os.path.join(HERE, "sleeping.pid.tmp")
    with open(tmp, "w") as f:
        f.write(str(os.getpid()))
    os.rename(tmp, os.path.join(HERE, "sleeping.pid"))
    time.sleep(float(request.args.get("s", "1")))
    return "slept"
`

// gunicornFreeUDPPort returns a UDP port on 127.0.0.1 that was free a moment ago.
func gunicornFreeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// gunicornStart starts Debian's gunicorn on the app in dir.
func gunicornStart(t *testing.T, dir, pidfile string, statsdPort int, workers int, extra ...string) (*Process, string) {
	t.Helper()
	RequireCommand(t, gunicornBin)
	port := FreePort(t)
	args := append([]string{
		"--pid", pidfile,
		"--statsd-host", fmt.Sprintf("127.0.0.1:%d", statsdPort),
		"-w", strconv.Itoa(workers),
		"-b", fmt.Sprintf("127.0.0.1:%d", port),
	}, extra...)
	args = append(args, "app:app")
	p := Start(t, dir, nil, gunicornBin, args...)
	return p, fmt.Sprintf("http://127.0.0.1:%d", port)
}

// gunicornWait scrapes until cond holds on the exposition, for at most 20 s.
func gunicornWait(t *testing.T, x *Exporter, what string, cond func(m Metrics) bool) Metrics {
	t.Helper()
	var last Metrics
	deadline := time.Now().Add(60 * time.Second)
	for {
		last = x.Scrape(t)
		if cond(last) {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last scrape:\n%s", what, gunicornGrep(last.Raw, "gunicorn"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// gunicornGrep keeps the lines of an exposition that contain s.
func gunicornGrep(raw []byte, s string) string {
	var out []string
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.Contains(l, s) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// gunicornWorkerPIDs maps slot to pid from gunicorn_worker_info.
func gunicornWorkerPIDs(m Metrics) map[string]string {
	out := map[string]string{}
	f := m.Families["gunicorn_worker_info"]
	if f == nil {
		return out
	}
	for _, s := range f.GetMetric() {
		var slot, pid string
		for _, l := range s.GetLabel() {
			switch l.GetName() {
			case "slot":
				slot = l.GetValue()
			case "pid":
				pid = l.GetValue()
			}
		}
		out[slot] = pid
	}
	return out
}

func TestGunicornProcAndStatsd(t *testing.T) {
	RequireCommand(t, gunicornBin)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.py"), []byte(gunicornApp), 0o644); err != nil {
		t.Fatal(err)
	}
	pidfile := filepath.Join(dir, "g.pid")
	statsdPort := gunicornFreeUDPPort(t)
	x := StartExporter(t, "--gunicorn.pidfile="+pidfile,
		fmt.Sprintf("--gunicorn.statsd-listen-address=127.0.0.1:%d", statsdPort), "--gunicorn.statsd-tag-labels=env")
	pf := map[string]string{"pidfile": pidfile}

	// Before gunicorn runs: the pidfile is missing, the listener is up.
	m := x.Scrape(t)
	if m.Get(t, "gunicorn_up", pf) != 0 || m.Get(t, "gunicorn_statsd_up", nil) != 1 {
		t.Fatalf("before start:\n%s", gunicornGrep(m.Raw, "_up"))
	}
	if m.Get(t, "wsgi_exporter_scrape_errors_total", map[string]string{"kind": "gunicorn", "reason": "not_found"}) != 1 {
		t.Fatalf("missing pidfile not counted as not_found:\n%s", gunicornGrep(m.Raw, "errors"))
	}

	g, url := gunicornStart(t, dir, pidfile, statsdPort, 4)
	m = gunicornWait(t, x, "4 workers in both paths", func(m Metrics) bool {
		return m.Sum("gunicorn_up", pf) == 1 && m.Sum("gunicorn_workers", pf) == 4 &&
			m.Count("gunicorn_worker_heartbeat_age_seconds", nil) == 4 && m.Sum("gunicorn_statsd_workers", nil) == 4
	})
	if m.Get(t, "gunicorn_master_info", map[string]string{"pid": strconv.Itoa(g.Cmd.Process.Pid)}) != 1 {
		t.Fatalf("master pid is not gunicorn's %d:\n%s", g.Cmd.Process.Pid, gunicornGrep(m.Raw, "master"))
	}
	if n := m.Count("gunicorn_worker_proportional_memory_bytes", nil); n != 4 {
		t.Fatalf("%d PSS series, want 4", n)
	}
	if got := gunicornWorkerPIDs(m); len(got) != 4 || got["0"] == "" || got["3"] == "" {
		t.Fatalf("slots %v, want 0-3", got)
	}
	if m.Get(t, "gunicorn_workers_started_total", pf) != 0 {
		t.Fatalf("the first workers counted as restarts")
	}
	PromtoolCheck(t, m.Raw)

	t.Run("requests", func(t *testing.T) {
		HTTPGetN(t, url+"/", 10, 200)
		HTTPGetN(t, url+"/nope", 3, 404)
		HTTPGetN(t, url+"/boom", 2, 500)
		m := gunicornWait(t, x, "15 requests over statsd", func(m Metrics) bool {
			return m.Sum("gunicorn_statsd_requests_total", nil) == 15 &&
				m.Sum("gunicorn_statsd_responses_total", nil) == 15 &&
				m.Sum("gunicorn_statsd_request_duration_seconds", nil) == 15
		})
		for code, want := range map[string]float64{"200": 10, "404": 3, "500": 2} {
			if got := m.Get(t, "gunicorn_statsd_responses_total", map[string]string{"code": code}); got != want {
				t.Errorf("status %s: %v, want %v", code, got, want)
			}
		}
		if n := m.Count("gunicorn_statsd_responses_total", nil); n != 3 {
			t.Errorf("%d status codes, want 3", n)
		}
		if got := m.Sum("gunicorn_statsd_lines_dropped_total", nil); got != 0 {
			t.Errorf("%v lines dropped", got)
		}
		PromtoolCheck(t, m.Raw)
	})

	t.Run("heartbeat of a stuck worker grows", func(t *testing.T) {
		done := make(chan error, 1)
		go func() {
			c := &http.Client{Timeout: 20 * time.Second}
			resp, err := c.Get(url + "/sleep?s=4")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != 200 {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			done <- err
		}()
		var pid string
		WaitFor(t, 10*time.Second, "the /sleep handler to start", func() bool {
			b, err := os.ReadFile(filepath.Join(dir, "sleeping.pid"))
			pid = string(b)
			return err == nil
		})
		m1 := x.Scrape(t)
		t1 := time.Now()
		slot := ""
		for s, p := range gunicornWorkerPIDs(m1) {
			if p == pid {
				slot = s
			}
		}
		if slot == "" {
			t.Fatalf("the sleeping worker %s has no slot:\n%s", pid, gunicornGrep(m1.Raw, "worker_info"))
		}
		sl := map[string]string{"slot": slot}
		age1 := m1.Get(t, "gunicorn_worker_heartbeat_age_seconds", sl)
		time.Sleep(2 * time.Second)
		m2 := x.Scrape(t)
		elapsed := time.Since(t1).Seconds()
		age2 := m2.Get(t, "gunicorn_worker_heartbeat_age_seconds", sl)
		// ctime has the kernel's timer-tick granularity: allow 0.1 s for it.
		if age2 < age1+elapsed-0.1 || age2 < 1.9 {
			t.Fatalf("heartbeat age %v then %v after %.2f s: the stuck worker's age must grow with the wall clock", age1, age2, elapsed)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})

	t.Run("TTIN adds a worker in both paths", func(t *testing.T) {
		if err := g.Signal(syscall.SIGTTIN); err != nil {
			t.Fatal(err)
		}
		m := gunicornWait(t, x, "5 workers", func(m Metrics) bool {
			return m.Sum("gunicorn_workers", pf) == 5 && m.Sum("gunicorn_statsd_workers", nil) == 5
		})
		if got := m.Get(t, "gunicorn_workers_started_total", pf); got != 1 {
			t.Fatalf("started %v, want 1", got)
		}
		if got := gunicornWorkerPIDs(m); len(got) != 5 || got["4"] == "" {
			t.Fatalf("slots %v, want 0-4", got)
		}
	})

	t.Run("SIGKILLed worker is replaced and counted", func(t *testing.T) {
		before := gunicornWorkerPIDs(x.Scrape(t))
		victim, err := strconv.Atoi(before["1"])
		if err != nil {
			t.Fatalf("slots %v", before)
		}
		if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		m := gunicornWait(t, x, "a replacement worker", func(m Metrics) bool {
			after := gunicornWorkerPIDs(m)
			return m.Sum("gunicorn_workers", pf) == 5 && after["1"] != "" && after["1"] != before["1"]
		})
		if got := m.Get(t, "gunicorn_workers_started_total", pf); got != 2 {
			t.Fatalf("started %v, want 2", got)
		}
		after := gunicornWorkerPIDs(m)
		for _, s := range []string{"0", "2", "3", "4"} {
			if after[s] != before[s] {
				t.Errorf("slot %s changed from %s to %s though its worker lives", s, before[s], after[s])
			}
		}
		// gunicorn logs the signalled worker as a warning, which statsd counts.
		gunicornWait(t, x, "the warning over statsd", func(m Metrics) bool {
			return m.Sum("gunicorn_statsd_log_messages_total", map[string]string{"level": "warning"}) == 1
		})
	})

	t.Run("stop and start again", func(t *testing.T) {
		g.Stop()
		m := gunicornWait(t, x, "gunicorn_up 0", func(m Metrics) bool { return m.Sum("gunicorn_up", pf) == 0 })
		if m.Get(t, "gunicorn_statsd_up", nil) != 1 {
			t.Fatalf("the statsd listener went down with gunicorn")
		}
		if m.Count("gunicorn_workers", pf) != 0 {
			t.Fatalf("worker series kept while down")
		}
		errs := map[string]string{"kind": "gunicorn", "reason": "not_found"}
		if m.Get(t, "wsgi_exporter_scrape_errors_total", errs) < 2 {
			t.Fatalf("stopped gunicorn not counted as not_found:\n%s", gunicornGrep(m.Raw, "errors"))
		}

		// Again, with max_requests: every worker is replaced after 3 requests. A statsd
		// prefix and dogstatsd tags this time: the prefix is stripped, the env tag is a label.
		g2, url2 := gunicornStart(t, dir, pidfile, statsdPort, 2, "--max-requests", "3",
			"--statsd-prefix", "myapp", "--dogstatsd-tags", "env:e2e,team:x")
		gunicornWait(t, x, "recovery", func(m Metrics) bool {
			return m.Sum("gunicorn_up", pf) == 1 && m.Sum("gunicorn_workers", pf) == 2
		})
		// A worker that starts within a second of the initial spawn loop is taken as part of
		// it (see README.md, gunicorn section): let that window pass before workers get replaced.
		time.Sleep(1500 * time.Millisecond)
		for i := 0; i < 12; i++ {
			HTTPGetN(t, url2+"/", 1, 200)
			x.Scrape(t) // a scrape between requests: no worker lives and dies unseen
		}
		// Each worker exits after its 3rd request: 12 requests retire 4 workers, so gunicorn
		// boots 2 + 4.
		booted := func() int { return strings.Count(g2.Output(), "Booting worker with pid") }
		WaitFor(t, 60*time.Second, "gunicorn to boot 6 workers", func() bool { return booted() == 6 })
		gunicornWait(t, x, "4 replacements counted", func(m Metrics) bool {
			return m.Sum("gunicorn_workers", pf) == 2 && m.Sum("gunicorn_workers_started_total", pf) == 2+4
		})
		e2e := map[string]string{"env": "e2e"}
		// gunicorn sends the workers gauge from its master loop (about once a second) when the
		// count changed; a replacement spawned last may be reported after the last request.
		m = gunicornWait(t, x, "12 tagged requests and 2 workers over statsd", func(m Metrics) bool {
			return m.Sum("gunicorn_statsd_requests_total", e2e) == 12 && m.Sum("gunicorn_statsd_workers", e2e) == 2
		})
		if got := m.Get(t, "gunicorn_statsd_responses_total", map[string]string{"env": "e2e", "code": "200"}); got != 12 {
			t.Errorf("tagged 200s %v, want 12", got)
		}
		if got := m.Get(t, "gunicorn_statsd_requests_total", map[string]string{"env": ""}); got != 16 {
			t.Errorf("untagged requests %v, want the first gunicorn's 16 (15 and /sleep)", got)
		}
		if got := m.Get(t, "gunicorn_statsd_workers", e2e); got != 2 {
			t.Errorf("tagged workers %v, want 2", got)
		}
		if n := m.Count("gunicorn_worker_info", pf); n != 2 {
			t.Fatalf("%d worker series, want 2 (slots are reused)", n)
		}
		for s := range gunicornWorkerPIDs(m) {
			if s != "0" && s != "1" {
				t.Fatalf("slot %s: slots must stay within the worker count", s)
			}
		}
		PromtoolCheck(t, m.Raw)
	})
}

// TestGunicornUSR2Upgrade follows a binary upgrade: USR2 starts a new master that writes
// <pidfile>.2; when the old master is stopped, the new one takes over the pidfile.
func TestGunicornUSR2Upgrade(t *testing.T) {
	RequireCommand(t, gunicornBin)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.py"), []byte(gunicornApp), 0o644); err != nil {
		t.Fatal(err)
	}
	pidfile := filepath.Join(dir, "g.pid")
	x := StartExporter(t, "--gunicorn.pidfile="+pidfile)
	pf := map[string]string{"pidfile": pidfile}
	g, _ := gunicornStart(t, dir, pidfile, gunicornFreeUDPPort(t), 2)
	oldPID := strconv.Itoa(g.Cmd.Process.Pid)
	gunicornWait(t, x, "the old master and 2 workers", func(m Metrics) bool {
		return m.Sum("gunicorn_master_info", map[string]string{"pid": oldPID}) == 1 && m.Sum("gunicorn_workers", pf) == 2
	})
	if err := g.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	var newPID string
	WaitFor(t, 60*time.Second, "the new master's pidfile", func() bool {
		b, err := os.ReadFile(pidfile + ".2")
		newPID = strings.TrimSpace(string(b))
		return err == nil && newPID != ""
	})
	// Once the old master is gone, Stop of its process no longer reaches the new master's
	// process group: stop it (and its workers with it) explicitly.
	newMaster, err := strconv.Atoi(newPID)
	if err != nil {
		t.Fatalf("new master pid %q", newPID)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(newMaster, syscall.SIGTERM)
		WaitFor(t, 10*time.Second, "the new master to exit", func() bool { return syscall.Kill(newMaster, 0) != nil })
	})
	gunicornWait(t, x, "the new master and its 2 workers", func(m Metrics) bool {
		return m.Sum("gunicorn_master_info", map[string]string{"pid": newPID}) == 1 && m.Sum("gunicorn_workers", pf) == 2
	})
	// Stop the old master: the new one is promoted and renames <pidfile>.2 to <pidfile>.
	if err := g.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 60*time.Second, "the promotion", func() bool {
		b, err := os.ReadFile(pidfile)
		_, err2 := os.Stat(pidfile + ".2")
		return err == nil && strings.TrimSpace(string(b)) == newPID && os.IsNotExist(err2)
	})
	m := gunicornWait(t, x, "the promoted master", func(m Metrics) bool {
		return m.Sum("gunicorn_up", pf) == 1 && m.Sum("gunicorn_master_info", map[string]string{"pid": newPID}) == 1 &&
			m.Sum("gunicorn_workers", pf) == 2
	})
	PromtoolCheck(t, m.Raw)
}
