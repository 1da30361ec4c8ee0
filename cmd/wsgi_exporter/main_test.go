package main

import (
	"os"
	"strings"
	"testing"

	"github.com/alecthomas/kingpin/v2"
)

func TestEnvarName(t *testing.T) {
	for in, want := range map[string]string{
		"web.listen-address":    "WSGI_EXPORTER_WEB_LISTEN_ADDRESS",
		"uwsgi.stats-uri":       "WSGI_EXPORTER_UWSGI_STATS_URI",
		"scrape.timeout-offset": "WSGI_EXPORTER_SCRAPE_TIMEOUT_OFFSET",
		"log.level":             "WSGI_EXPORTER_LOG_LEVEL",
		"multiproc.dir":         "WSGI_EXPORTER_MULTIPROC_DIR",
	} {
		if got := envarName(in); got != want {
			t.Errorf("envarName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestEveryFlagHasAnEnvar guards the promise that every flag is also an environment variable.
func TestEveryFlagHasAnEnvar(t *testing.T) {
	for _, f := range ownFlags(t) {
		if f.Envar != envarName(f.Name) {
			t.Errorf("flag --%s: envar %q, want %q", f.Name, f.Envar, envarName(f.Name))
		}
	}
}

// ownFlags are the flags main declares (kingpin's --help and --version left out), hidden
// ones included.
func ownFlags(t *testing.T) []*kingpin.FlagModel {
	t.Helper()
	app, _ := newApp()
	var out []*kingpin.FlagModel
	for _, f := range app.Model().Flags {
		if f.Name != "help" && f.Name != "version" {
			out = append(out, f)
		}
	}
	if len(out) < 40 {
		t.Fatalf("only %d flags found: the application model is not the one main builds", len(out))
	}
	return out
}

func TestEnvarSetsFlag(t *testing.T) {
	t.Setenv("WSGI_EXPORTER_SCRAPE_TIMEOUT", "7s")
	t.Setenv("WSGI_EXPORTER_WEB_TELEMETRY_PATH", "/m")
	app, s := newApp()
	if _, err := app.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if s.timeout.String() != "7s" || *s.metricsPath != "/m" {
		t.Fatalf("timeout %v, path %q", *s.timeout, *s.metricsPath)
	}
	// A flag on the command line wins over the environment.
	app, s = newApp()
	if _, err := app.Parse([]string{"--scrape.timeout=2s"}); err != nil {
		t.Fatal(err)
	}
	if s.timeout.String() != "2s" {
		t.Fatalf("timeout %v", *s.timeout)
	}
}

func TestHelpNamesEnvars(t *testing.T) {
	app, _ := newApp()
	var b strings.Builder
	app.UsageWriter(&b)
	app.Usage(nil)
	if !strings.Contains(b.String(), "($WSGI_EXPORTER_WEB_LISTEN_ADDRESS)") {
		t.Fatalf("--help does not name the environment variables:\n%s", b.String())
	}
}

// A cap of zero or less on the announced scrape timeout is a start-up error (exit 2).
func TestMaxTimeoutMustBePositive(t *testing.T) {
	for _, v := range []string{"0s", "-1s"} {
		stdout, err := os.CreateTemp(t.TempDir(), "out")
		if err != nil {
			t.Fatal(err)
		}
		stderr, err := os.CreateTemp(t.TempDir(), "err")
		if err != nil {
			t.Fatal(err)
		}
		if code := run([]string{"--scrape.max-timeout=" + v}, stdout, stderr); code != 2 {
			t.Fatalf("%s: exit %d, want 2", v, code)
		}
		b, _ := os.ReadFile(stderr.Name())
		if !strings.Contains(string(b), "--scrape.max-timeout must be positive") {
			t.Fatalf("%s: stderr %q", v, b)
		}
	}
}
