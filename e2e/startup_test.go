package e2e

import (
	"context"
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

// TestStartupLog: the start-up log lists every configured source by kind and source label,
// before "Listening on", and warns of a multiprocess directory or gunicorn pidfile that does
// not exist (not only at the first scrape), but not of those that do.
func TestStartupLog(t *testing.T) {
	dir := t.TempDir()
	missingDir, presentDir := filepath.Join(dir, "missing-prom"), filepath.Join(dir, "prom")
	missingPid, presentPid := filepath.Join(dir, "missing.pid"), filepath.Join(dir, "gunicorn.pid")
	if err := os.Mkdir(presentDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(presentPid, []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stats := "unix://" + filepath.Join(dir, "stats.sock")
	nginx := "http://127.0.0.1:1/stub_status"
	statsd := fmt.Sprintf("127.0.0.1:%d", gunicornFreeUDPPort(t))
	x := StartExporter(t, "--uwsgi.stats-uri="+stats, "--nginx.scrape-uri="+nginx,
		"--multiproc.dir="+missingDir, "--multiproc.dir="+presentDir,
		"--gunicorn.pidfile="+missingPid, "--gunicorn.pidfile="+presentPid,
		"--gunicorn.statsd-listen-address="+statsd)
	WaitFor(t, 10*time.Second, "Listening on", func() bool { return strings.Contains(x.Output(), `msg="Listening on"`) })
	log := x.Output()
	listening := strings.Index(log, `msg="Listening on"`)
	for _, s := range [][2]string{
		{"uwsgi", stats}, {"nginx", nginx}, {"multiproc", missingDir}, {"multiproc", presentDir},
		{"gunicorn", missingPid}, {"gunicorn", presentPid}, {"gunicorn_statsd", statsd},
	} {
		// promslog writes a "source" attribute as logged_source (its own source is the caller).
		line := fmt.Sprintf(`msg="source configured" kind=%s logged_source=%s`, s[0], s[1])
		i := strings.Index(log, line)
		if i < 0 || i > listening {
			t.Errorf("no line %q before Listening on:\n%s", line, log)
		}
	}
	for _, w := range []string{
		fmt.Sprintf(`msg="multiprocess directory does not exist: the source is down until it does" kind=multiproc logged_source=%s`, missingDir),
		fmt.Sprintf(`msg="gunicorn pidfile does not exist: the source is down until it does" kind=gunicorn logged_source=%s`, missingPid),
	} {
		if !strings.Contains(log, w) {
			t.Errorf("no warning %q:\n%s", w, log)
		}
	}
	for _, p := range []string{presentDir, presentPid} {
		for _, l := range strings.Split(log, "\n") {
			if strings.Contains(l, "level=WARN") && containsString(strings.Fields(l), "logged_source="+p) {
				t.Errorf("a warning about %s, which exists: %s", p, l)
			}
		}
	}
}

// TestExitCodes: each start-up mistake stops the exporter with exit code 2 and a message
// naming the flag, variable or file, before it listens; a port in use is exit code 1;
// SIGTERM is a clean exit 0.
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	badWeb := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(badWeb, []byte("tls_server_config:\n  cert_file: /nonexistent/cert.pem\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	typo := filepath.Join(dir, "typo.yml")
	if err := os.WriteFile(typo, []byte("basic_auth_user:\n  alice: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	for _, c := range []struct {
		name string
		args []string
		env  []string
		code int
		want string
	}{
		{"bad duration", []string{"--scrape.timeout=5x"}, nil, 2, `--scrape.timeout: time: unknown unit "x" in duration "5x"`},
		{"bad size", []string{"--multiproc.max-bytes=1ZB"}, nil, 2, "--multiproc.max-bytes: "},
		{"bad enum", []string{"--multiproc.dir-label=sometimes"}, nil, 2, "--multiproc.dir-label: enum value must be one of auto,always,never"},
		{"bad number", []string{"--web.max-requests=many"}, nil, 2, "--web.max-requests: "},
		{"bad duration in the environment", nil, []string{"WSGI_EXPORTER_SCRAPE_TIMEOUT_OFFSET=1q"}, 2, "WSGI_EXPORTER_SCRAPE_TIMEOUT_OFFSET (--scrape.timeout-offset): "},
		{"unknown flag", []string{"--scrape.timout=5s"}, nil, 2, "unknown long flag '--scrape.timout'"},
		{"bad source", []string{"--nginx.scrape-uri=ftp://127.0.0.1/stub_status"}, nil, 2, "--nginx.scrape-uri"},
		{"web config: a file that is not there", []string{"--web.config.file=" + filepath.Join(dir, "none.yml")}, nil, 2, "--web.config.file " + filepath.Join(dir, "none.yml")},
		{"web config: a certificate that is not there", []string{"--web.config.file=" + badWeb}, nil, 2, "--web.config.file " + badWeb},
		{"web config: a misspelt key", []string{"--web.config.file=" + typo}, nil, 2, "--web.config.file " + typo + ": yaml: unmarshal errors"},
		{"port in use", []string{"--web.listen-address=" + busy.Addr().String()}, nil, 1, "address already in use"},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := c.args
			if !strings.Contains(strings.Join(args, " "), "--web.listen-address") {
				args = append(args, fmt.Sprintf("--web.listen-address=127.0.0.1:%d", FreePort(t)))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, exporterBin, args...)
			cmd.Env = append(os.Environ(), c.env...)
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("still running after 20 s:\n%s", out)
			}
			if code := cmd.ProcessState.ExitCode(); code != c.code {
				t.Fatalf("exit code %d (%v), want %d:\n%s", code, err, c.code, out)
			}
			if !strings.Contains(string(out), c.want) {
				t.Errorf("output does not say %q:\n%s", c.want, out)
			}
			if c.code == 2 && strings.Contains(string(out), "Listening on") {
				t.Errorf("listened before failing:\n%s", out)
			}
		})
	}

	t.Run("SIGTERM", func(t *testing.T) {
		x := StartExporter(t)
		if err := x.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		WaitFor(t, 10*time.Second, "the exporter to stop", x.Exited)
		if code := x.Cmd.ProcessState.ExitCode(); code != 0 {
			t.Fatalf("exit code %d after SIGTERM, want 0:\n%s", code, x.Output())
		}
	})
}
