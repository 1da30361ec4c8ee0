package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestGunicornBadFlagsFailAtStart checks that unusable gunicorn flags stop the exporter at
// start-up with exit status 2 and a message naming the flag.
func TestGunicornBadFlagsFailAtStart(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--gunicorn.statsd-listen-address=localhost"}, "--gunicorn.statsd-listen-address"},
		{[]string{"--gunicorn.statsd-listen-address=unix:relative.sock"}, "must be absolute"},
		{[]string{"--gunicorn.statsd-listen-address=127.0.0.1:0", "--gunicorn.statsd-tag-labels=code"}, "clashes with a label"},
		{[]string{"--gunicorn.statsd-listen-address=127.0.0.1:0", "--gunicorn.statsd-tag-labels=bad-key"}, "cannot be a label name"},
		{[]string{"--gunicorn.statsd-max-series=0"}, "--gunicorn.statsd-max-series"},
		{[]string{"--gunicorn.pidfile=/run/g.pid", "--gunicorn.procfs=/nonexistent"}, "--gunicorn.procfs"},
		{[]string{"--gunicorn.pidfile=/run/g.pid", "--path.procfs=/nonexistent"}, "--path.procfs"},
		{[]string{"--gunicorn.pidfile=/run/g.pid", "--path.procfs="}, "--path.procfs is empty"},
	} {
		cmd := exec.Command(exporterBin, append([]string{"--web.listen-address=127.0.0.1:0"}, c.args...)...)
		out, err := cmd.CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), c.want) {
			t.Errorf("%v: err %v, want exit 2 and %q in:\n%s", c.args, err, c.want, out)
		}
	}
}

// TestGunicornStatsdBindFailureIsDown checks that a listen address in use makes the statsd
// source down (reason connect) without stopping the exporter.
func TestGunicornStatsdBindFailureIsDown(t *testing.T) {
	busy, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.LocalAddr().String()
	x := StartExporter(t, fmt.Sprintf("--gunicorn.statsd-listen-address=%s", addr))
	m := x.Scrape(t)
	if got := m.Get(t, "gunicorn_statsd_up", map[string]string{"source": addr}); got != 0 {
		t.Fatalf("gunicorn_statsd_up %v with the port taken", got)
	}
	if got := m.Get(t, "wsgi_exporter_scrape_errors_total", map[string]string{"kind": "gunicorn_statsd", "reason": "connect"}); got != 1 {
		t.Fatalf("connect errors %v, want 1", got)
	}
	PromtoolCheck(t, m.Raw)
}

// TestGunicornStalePidfile kills the master outright, which leaves its pidfile behind: the
// source is down with reason not_found and says the pidfile is stale.
func TestGunicornStalePidfile(t *testing.T) {
	RequireCommand(t, gunicornBin)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.py"), []byte(gunicornApp), 0o644); err != nil {
		t.Fatal(err)
	}
	pidfile := filepath.Join(dir, "g.pid")
	x := StartExporter(t, "--gunicorn.pidfile="+pidfile)
	pf := map[string]string{"pidfile": pidfile}
	g, _ := gunicornStart(t, dir, pidfile, gunicornFreeUDPPort(t), 1)
	errs := map[string]string{"kind": "gunicorn", "reason": "not_found"}
	before := gunicornWait(t, x, "gunicorn up", func(m Metrics) bool { return m.Sum("gunicorn_workers", pf) == 1 }).
		Get(t, "wsgi_exporter_scrape_errors_total", errs)
	if err := g.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// (Exited waits for the output pipes too, which the orphaned worker keeps open.)
	WaitFor(t, 10*time.Second, "the master to die", func() bool { return syscall.Kill(g.Cmd.Process.Pid, 0) != nil })
	if _, err := os.Stat(pidfile); err != nil {
		t.Fatalf("the pidfile should outlive a SIGKILLed master: %v", err)
	}
	m := gunicornWait(t, x, "gunicorn_up 0", func(m Metrics) bool { return m.Sum("gunicorn_up", pf) == 0 })
	if got := m.Get(t, "wsgi_exporter_scrape_errors_total", errs); got != before+1 {
		t.Fatalf("not_found errors %v, want %v", got, before+1)
	}
	WaitFor(t, 10*time.Second, "the stale pidfile in the log", func() bool {
		return strings.Contains(x.Output(), "stale pidfile "+pidfile)
	})
	// The orphaned worker is in gunicorn's process group; stop it.
	t.Cleanup(func() { _ = syscall.Kill(-g.Cmd.Process.Pid, syscall.SIGKILL) })
}
