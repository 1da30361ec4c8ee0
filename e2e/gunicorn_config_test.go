package e2e

import (
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
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
