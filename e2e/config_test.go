package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// configRun runs the built binary to completion and returns its exit code and output.
func configRun(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(exporterBin, args...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// TestConfigCheck: --config.check exits 0 for a valid configuration and 1 with every reason
// (file and line) for an invalid one, without serving; a password never reaches the output.
func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const secret = "hunter2-do-not-print"
	write("nginx.pw", secret+"\n")
	good := write("good.yml", `sources:
  - kind: nginx
    name: front
    address: http://127.0.0.1:8080/stub_status
    nginx: {basic_auth: {username: prom, password_file: nginx.pw}}
modules:
  uwsgi: {kind: uwsgi, allow: {addresses: ["10.0.0.0/8:1717"]}}
`)
	bad := write("bad.yml", `sources:
  - kind: uwsgi
    adress: 127.0.0.1:1717
  - kind: nginx
    address: http://127.0.0.1:8080/stub_status
    nginx: {basic_auth: {username: prom, password: `+secret+`}}
`)
	typed := write("typed.yml", "sources:\n  - kind: uwsgi\n    address: 127.0.0.1:1717\n    uwsgi: {collect_cores: "+secret+"}\n")
	dup := write("dup.yml", "sources:\n  - {kind: uwsgi, address: \"tcp://127.0.0.1:1717\"}\n")
	for _, c := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"--config.file=" + good}, 0, []string{"configuration valid (" + good + "): 1 sources (0 from flags), 1 probe modules"}},
		{[]string{"--config.file=" + bad}, 1, []string{
			"invalid configuration: 2 problems:",
			bad + `:3: sources[0]: unknown key "adress"`,
			bad + `:6: sources[1].nginx.basic_auth: unknown key "password": secrets are read only from files (password_file)`,
		}},
		{[]string{"--config.file=" + typed}, 1, []string{typed + `:4: cannot unmarshal !!str a value into bool`}},
		{[]string{"--config.file=" + dup, "--uwsgi.stats-uri=127.0.0.1:1717"}, 1, []string{
			"uwsgi tcp://127.0.0.1:1717 is configured twice: by --uwsgi.stats-uri=127.0.0.1:1717 and by " + dup + ":2",
		}},
		{[]string{"--config.file=" + filepath.Join(dir, "missing.yml")}, 1, []string{"missing.yml: no such file or directory"}},
	} {
		code, out := configRun(t, append([]string{"--config.check"}, c.args...)...)
		if code != c.code {
			t.Errorf("%v: exit %d, want %d\n%s", c.args, code, c.code, out)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output lacks %q:\n%s", c.args, w, out)
			}
		}
		if strings.Contains(out, secret) {
			t.Errorf("%v: the password is in the output:\n%s", c.args, out)
		}
		if strings.Contains(out, "Listening on") {
			t.Errorf("%v: --config.check served:\n%s", c.args, out)
		}
	}
	// Without --config.check, an invalid file stops the exporter with the configuration code.
	if code, out := configRun(t, "--config.file="+bad, "--web.listen-address=127.0.0.1:0"); code != 2 || strings.Contains(out, secret) {
		t.Errorf("invalid file without --config.check: exit %d\n%s", code, out)
	}

	// Running: the password is sent to nginx, never shown (log at debug level, metrics,
	// landing page).
	x := StartExporter(t, "--config.file="+good)
	m := x.Scrape(t)
	_, landing := x.Get(t, "/", nil)
	if strings.Contains(string(m.Raw)+string(landing)+x.Output(), secret) {
		t.Error("the password is shown")
	}
}

// sendUDP sends statsd lines to a UDP address.
func sendUDP(t *testing.T, addr string, lines ...string) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, l := range lines {
		if _, err := c.Write([]byte(l)); err != nil {
			t.Fatal(err)
		}
	}
}

func freeUDP(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// TestConfigReload: SIGHUP and POST /-/reload load the file again. A bad file keeps the old
// configuration, logs why and sets wsgi_exporter_config_last_reload_successful to 0; a good
// one replaces it (1, and a newer timestamp). The statsd listener, whose entry does not
// change, keeps its socket and its counters through every reload.
func TestConfigReload(t *testing.T) {
	RequireCommand(t, "uwsgi")
	dir := t.TempDir()
	statsd := freeUDP(t)
	stats := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	u := uwsgiStart(t, "u", stats, stats, "--stats", stats)
	u.waitReady(t)
	cfg := filepath.Join(dir, "wsgi.yml")
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(cfg+".tmp", []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(cfg+".tmp", cfg); err != nil {
			t.Fatal(err)
		}
	}
	statsdEntry := fmt.Sprintf("  - {kind: gunicorn_statsd, name: app, address: %q}\n", statsd)
	uwsgiEntry := fmt.Sprintf("  - {kind: uwsgi, name: shop, address: %q}\n", stats)
	write("sources:\n" + statsdEntry)
	x := StartExporter(t, "--config.file="+cfg, "--web.enable-lifecycle")

	type state struct {
		ok, datagrams, uwsgiUp float64
		uwsgi                  int
		ts                     float64
	}
	read := func() state {
		m := x.Scrape(t)
		return state{
			ok:        m.Get(t, "wsgi_exporter_config_last_reload_successful", nil),
			ts:        m.Get(t, "wsgi_exporter_config_last_reload_success_timestamp_seconds", nil),
			datagrams: m.Sum("gunicorn_statsd_datagrams_total", map[string]string{"source": "app"}),
			uwsgiUp:   m.Sum("uwsgi_up", map[string]string{"stats_uri": "shop"}),
			uwsgi:     m.Count("uwsgi_up", nil),
		}
	}
	WaitFor(t, 10*time.Second, "the statsd listener bound", func() bool {
		sendUDP(t, statsd, "gunicorn.requests:1|c")
		return read().datagrams > 0
	})
	sent := read().datagrams
	sendUDP(t, statsd, "gunicorn.requests:1|c", "gunicorn.requests:1|c")
	sent += 2
	WaitFor(t, 10*time.Second, "the datagrams counted", func() bool { return read().datagrams == sent })
	start := read()
	if start.ok != 1 || start.ts == 0 || start.uwsgi != 0 {
		t.Fatalf("at start: %+v", start)
	}

	// A bad file on SIGHUP: the old configuration stays.
	write("sources:\n" + statsdEntry + uwsgiEntry + "  - {kind: uwsgi, adress: x}\n")
	if err := x.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 10*time.Second, "the failed reload", func() bool { return read().ok == 0 })
	if s := read(); s.ts != start.ts || s.uwsgi != 0 || s.datagrams != sent {
		t.Errorf("after a bad file: %+v", s)
	}
	WaitFor(t, 5*time.Second, "the reason logged", func() bool {
		return strings.Contains(x.Output(), cfg+`:4: sources[2]: unknown key \"adress\"`)
	})
	if x.Exited() {
		t.Fatal("the exporter exited on SIGHUP")
	}

	// The same bad file through POST /-/reload: 500 with the reason.
	resp, err := http.Post(x.URL+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 || !strings.Contains(string(body), `unknown key "adress"`) {
		t.Errorf("POST /-/reload of a bad file: %d %s", resp.StatusCode, body)
	}

	// A good file through POST: the uWSGI source appears, the listener keeps its counters.
	write("sources:\n" + statsdEntry + uwsgiEntry)
	time.Sleep(10 * time.Millisecond)
	resp, err = http.Post(x.URL+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /-/reload: %d", resp.StatusCode)
	}
	s := read()
	if s.ok != 1 || s.ts <= start.ts || s.uwsgi != 1 || s.uwsgiUp != 1 || s.datagrams != sent {
		t.Errorf("after a good file: %+v (sent %v)", s, sent)
	}
	sendUDP(t, statsd, "gunicorn.requests:1|c")
	sent++
	WaitFor(t, 10*time.Second, "the kept socket to count on", func() bool { return read().datagrams == sent })

	// SIGHUP with the uWSGI source removed.
	write("sources:\n" + statsdEntry)
	if err := x.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 10*time.Second, "the source removed", func() bool { return read().uwsgi == 0 })
	if s := read(); s.ok != 1 || s.datagrams != sent {
		t.Errorf("after the removal: %+v (sent %v)", s, sent)
	}
}
