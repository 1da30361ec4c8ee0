package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// demoTraffic is what demo/traffic.py writes when it ends: status codes received per target
// and path.
type demoTraffic struct {
	Sent  int
	Codes map[string]map[string]map[string]int
}

// count is the number of answers of target with code to the given paths (any code when
// code is empty).
func (s demoTraffic) count(target, code string, paths ...string) float64 {
	n := 0
	for path, codes := range s.Codes[target] {
		if len(paths) > 0 && !containsString(paths, path) {
			continue
		}
		for c, k := range codes {
			if code == "" || c == code {
				n += k
			}
		}
	}
	return float64(n)
}

func containsString(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// groupMembers lists the processes whose process group is one of pgids.
func groupMembers(t *testing.T, pgids map[string]int) []int {
	t.Helper()
	want := map[int]bool{}
	for _, p := range pgids {
		want[p] = true
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if pgid, _ := strconv.Atoi(f[2]); want[pgid] {
			out = append(out, pid)
		}
	}
	return out
}

func alivePid(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}

// startDecoys runs processes named like the demo's programs that the demo did not start: its
// stop must leave them alone.
func startDecoys(t *testing.T) []*Process {
	t.Helper()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var out []*Process
	for _, name := range []string{"nginx", "uwsgi", "gunicorn", "prometheus", "wsgi_exporter", "python3"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o755); err != nil {
			t.Fatal(err)
		}
		out = append(out, Start(t, dir, nil, p, "600"))
	}
	return out
}

// TestDemo runs `scripts/demo.sh run` as `make demo` does, with 200 requests of traffic,
// waits for Prometheus to have data from every source, checks what the exporter served
// against what the traffic generator received, then presses Ctrl-C: every process the demo
// started is gone, processes with the same names that it did not start still run. Then
// `start` and `stop` (make demo-stop) do the same.
func TestDemo(t *testing.T) {
	decoys := startDecoys(t)
	d := newDemoStack(t, "DEMO_TRAFFIC_RATE=25", "DEMO_TRAFFIC_REQUESTS=200", "DEMO_BURST_EVERY=0")
	run := Start(t, "", d.Env, demoScript(t), "run")
	WaitFor(t, 120*time.Second, "the demo to start", func() bool {
		if run.Exited() {
			t.Fatalf("scripts/demo.sh run exited:\n%s%s", run.Output(), d.logs())
		}
		_, err := os.Stat(filepath.Join(d.State, "ready"))
		return err == nil && strings.Contains(run.Output(), "Ctrl-C")
	})
	for _, want := range []string{d.Exporter + "/", d.Prometheus + "/", "Ctrl-C"} {
		if !strings.Contains(run.Output(), want) {
			t.Errorf("the demo's output does not name %q:\n%s", want, run.Output())
		}
	}
	d.waitAllSourcesUp(t)

	var traffic demoTraffic
	WaitFor(t, 60*time.Second, "the traffic generator to finish", func() bool {
		b, err := os.ReadFile(filepath.Join(d.State, "traffic.json"))
		return err == nil && json.Unmarshal(b, &traffic) == nil
	})
	if traffic.Sent != 200 {
		t.Fatalf("traffic generator sent %d requests, want 200", traffic.Sent)
	}
	u, g := "uwsgi", "gunicorn"
	if e := traffic.count(u, "error") + traffic.count(g, "error"); e != 0 {
		t.Fatalf("%v requests failed without an answer: %+v", e, traffic.Codes)
	}
	// The mix (demo/traffic.py): per 20 requests to a target 14 /, 2 /slow, 2 unknown paths,
	// 1 /error, 1 /raise.
	for _, target := range []string{u, g} {
		if n := traffic.count(target, ""); n != 100 {
			t.Fatalf("%s received %v requests, want 100: %+v", target, n, traffic.Codes)
		}
	}
	raiseCode := map[string]string{u: "502", g: "500"} // nginx answers 502 when uWSGI's worker raises
	for _, target := range []string{u, g} {
		for path, code := range map[string]string{"/": "200", "/slow": "200", "/nope": "404", "/nope/again": "404", "/error": "500", "/raise": raiseCode[target]} {
			if traffic.count(target, code, path) == 0 || traffic.count(target, code, path) != traffic.count(target, "", path) {
				t.Fatalf("%s %s: want every answer %s: %+v", target, path, code, traffic.Codes[target])
			}
		}
	}

	d.waitScrapedAfter(t)
	// demo.sh's readiness check sent one more GET / to each app.
	facts := []struct {
		query string
		want  float64
	}{
		{`sum(uwsgi_worker_requests_total)`, traffic.count(u, "") + 1},
		{`sum(uwsgi_worker_exceptions_total)`, traffic.count(u, "", "/raise")},
		{`sum(uwsgi_worker_status{status="idle"})`, 4},
		{`sum(nginx_connections_accepted) - sum(nginx_connections_handled)`, 0},
		{`sum(gunicorn_statsd_requests_total)`, traffic.count(g, "") + 1},
		{`sum(gunicorn_statsd_responses_total{code="200"})`, traffic.count(g, "200") + 1},
		{`sum(gunicorn_statsd_responses_total{code="404"})`, traffic.count(g, "404")},
		{`sum(gunicorn_statsd_responses_total{code="500"})`, traffic.count(g, "500")},
		{`sum(gunicorn_statsd_log_messages_total{level="exception"})`, traffic.count(g, "", "/raise")},
		{`sum(gunicorn_workers)`, 4},
	}
	for _, target := range []string{u, g} {
		dir := fmt.Sprintf(`multiproc_dir=%q`, filepath.Join(d.State, "multiproc", target))
		facts = append(facts, []struct {
			query string
			want  float64
		}{
			{`sum(app_requests_total{` + dir + `,route="/",code="200"})`, traffic.count(target, "200", "/") + 1},
			{`sum(app_requests_total{` + dir + `,route="/slow",code="200"})`, traffic.count(target, "200", "/slow")},
			{`sum(app_requests_total{` + dir + `,route="unknown",code="404"})`, traffic.count(target, "404")},
			{`sum(app_requests_total{` + dir + `,route="/error",code="500"})`, traffic.count(target, "500", "/error")},
			{`sum(app_request_duration_seconds_count{` + dir + `})`, traffic.count(target, "") + 1 - traffic.count(target, "", "/raise")},
		}...)
	}
	// The servers count a request when they have finished it, which on a loaded machine can be
	// a while after its answer arrived, and Prometheus stores it at its next scrape: the facts
	// must all hold, exactly, within a minute.
	var wrong []string
	deadline := time.Now().Add(60 * time.Second)
	for {
		wrong = wrong[:0]
		for _, f := range facts {
			v, err := promVector(d.Prometheus, f.query, time.Time{})
			if err != nil || len(v) != 1 || v[0].Value != f.want {
				wrong = append(wrong, fmt.Sprintf("%s = %v (%v), want %v", f.query, v, err, f.want))
			}
		}
		if len(wrong) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	for _, w := range wrong {
		t.Error(w)
	}

	// Ctrl-C: SIGINT to the script's process group, as a terminal sends it.
	pids := d.pids(t)
	if len(pids) != 6 {
		t.Fatalf("the demo recorded %d pids, want 6: %v", len(pids), pids)
	}
	members := groupMembers(t, pids)
	// The traffic generator has ended; uWSGI and gunicorn have 4 workers each, nginx one.
	if len(members) < 5+4+4+1 {
		t.Fatalf("only %d processes in the demo's process groups: %v", len(members), members)
	}
	if err := syscall.Kill(-run.Cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 90*time.Second, "the demo to stop", run.Exited)
	if code := run.Cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("scripts/demo.sh run exited %d after Ctrl-C:\n%s", code, run.Output())
	}
	for _, p := range members {
		if alivePid(p) {
			t.Errorf("pid %d of the demo still runs after Ctrl-C", p)
		}
	}
	if left := d.pids(t); len(left) != 0 {
		t.Errorf("pid files left after stop: %v", left)
	}

	// make demo-stop: start in the background, then stop.
	d.Env = append(d.Env, "DEMO_TRAFFIC_RATE=0")
	d.start(t)
	pids = d.pids(t)
	if len(pids) != 5 {
		t.Fatalf("start recorded %d pids, want 5 (no traffic): %v", len(pids), pids)
	}
	members = groupMembers(t, pids)
	cmd := exec.Command(demoScript(t), "start")
	cmd.Env = append(os.Environ(), d.Env...)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "already running") {
		t.Errorf("a second start: %v, want an error naming the running demo:\n%s", err, out)
	}
	out := d.script(t, "stop")
	for _, c := range []string{"uwsgi", "nginx", "gunicorn", "exporter", "prometheus"} {
		if !strings.Contains(out, "stopped "+c) {
			t.Errorf("stop did not report %s:\n%s", c, out)
		}
	}
	for _, p := range members {
		if alivePid(p) {
			t.Errorf("pid %d of the demo still runs after stop", p)
		}
	}
	for _, p := range decoys {
		if p.Exited() {
			t.Errorf("%s, not started by the demo, was stopped", p.Cmd.Path)
		}
	}
}
