package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"

	"github.com/wsgi-exporter/wsgi_exporter/collector"
)

// WaitUntil polls cond for up to 20 s.
func WaitUntil(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fleetError builds the fleet of a command line, flag sources included, and returns the error.
func fleetError(t *testing.T, args ...string) error {
	t.Helper()
	app, s := newApp()
	if _, err := app.Parse(args); err != nil {
		t.Fatal(err)
	}
	logger := promslog.NewNopLogger()
	c := common{Timeout: *s.timeout, Logger: logger, ProcFS: *s.procfs, ProcFSFlag: "--path.procfs"}
	var sources []collector.Source
	for _, k := range s.kinds {
		built, err := k.build(c)
		if err != nil {
			return err
		}
		sources = append(sources, built...)
	}
	_, err := s.newFleet(sources, logger)
	return err
}

// The same source given by a flag and by the file names both places; so does a name used
// twice.
func TestFlagAndFileDuplicates(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, `sources:
  - kind: uwsgi
    address: tcp://127.0.0.1:1717
  - kind: nginx
    name: front
    address: http://127.0.0.1:8080/stub_status
  - kind: multiproc
    address: `+dir+`/mp
`)
	for _, c := range []struct {
		flag, want string
	}{
		{"--uwsgi.stats-uri=127.0.0.1:1717",
			"uwsgi tcp://127.0.0.1:1717 is configured twice: by --uwsgi.stats-uri=127.0.0.1:1717 and by " + cfg + ":2: give each source once"},
		{"--nginx.scrape-uri=http://127.0.0.1:8080/stub_status",
			"nginx http://127.0.0.1:8080/stub_status is configured twice: by --nginx.scrape-uri=http://127.0.0.1:8080/stub_status and by " + cfg + ":4"},
		{"--multiproc.dir=" + dir + "/x/../mp/",
			"multiproc " + dir + "/mp is configured twice: by --multiproc.dir=" + dir + "/x/../mp/ and by " + cfg + ":7"},
	} {
		err := fleetError(t, "--config.file="+cfg, c.flag)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v\nwant %s", c.flag, err, c.want)
		}
	}
	if err := fleetError(t, "--config.file="+cfg, "--uwsgi.stats-uri=127.0.0.1:1718"); err != nil {
		t.Errorf("distinct sources refused: %v", err)
	}
}

func TestFileSourceDefaults(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, `global: {timeout: 7s}
sources:
  - {kind: uwsgi, address: "127.0.0.1:1", timeout: 2s}
  - {kind: uwsgi, address: "127.0.0.1:2"}
  - {kind: multiproc, address: /run/a}
  - {kind: multiproc, address: /run/b, multiproc: {dir_label: never}}
`)
	fl := testFleet(t, "--config.file="+cfg, "--scrape.timeout=9s")
	got := map[string]time.Duration{}
	for _, s := range fl.current().exp.Sources() {
		got[s.Config().Address] = s.Config().Timeout
	}
	if got["127.0.0.1:1"] != 2*time.Second || got["127.0.0.1:2"] != 7*time.Second {
		t.Errorf("timeouts %v", got)
	}
	// Without global.timeout, --scrape.timeout.
	cfg = writeConfig(t, dir, "sources:\n  - {kind: uwsgi, address: \"127.0.0.1:2\"}\n")
	if to := testFleet(t, "--config.file="+cfg, "--scrape.timeout=9s").current().exp.Sources()[0].Config().Timeout; to != 9*time.Second {
		t.Errorf("timeout %v, want --scrape.timeout's 9s", to)
	}
}

func TestConfigCheckRun(t *testing.T) {
	dir := t.TempDir()
	good := writeConfig(t, dir, "sources:\n  - {kind: uwsgi, address: \"127.0.0.1:1717\"}\n")
	bad := filepath.Join(dir, "bad.yml")
	if err := os.WriteFile(bad, []byte("sources:\n  - {kind: uwsgi, adress: x}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"--config.check", "--config.file=" + good}, 0, "configuration valid (" + good + "): 1 sources (0 from flags), 0 probe modules"},
		{[]string{"--config.check", "--config.file=" + good, "--nginx.scrape-uri=http://a/"}, 0, "2 sources (1 from flags)"},
		{[]string{"--config.check", "--config.file=" + bad}, 1, bad + `:2: sources[0]: unknown key "adress"`},
		{[]string{"--config.check", "--config.file=" + filepath.Join(dir, "missing.yml")}, 1, "missing.yml: no such file or directory"},
		{[]string{"--config.check", "--config.file=" + good, "--uwsgi.stats-uri=tcp://127.0.0.1:1717"}, 1, "configured twice"},
		{[]string{"--config.check", "--uwsgi.stats-uri=gopher://x"}, 1, "--uwsgi.stats-uri"},
		{[]string{"--config.file=" + bad}, 2, ""},
		{[]string{"--config.check", "--web.telemetry-path=/probe"}, 1, "--web.telemetry-path /probe: the exporter serves that path itself"},
	} {
		stdout, stderr := tempFile(t), tempFile(t)
		code := run(append(c.args, "--web.listen-address=127.0.0.1:0"), stdout, stderr)
		out := readFile(t, stdout) + readFile(t, stderr)
		if code != c.code || !strings.Contains(out, c.out) {
			t.Errorf("%v: exit %d, want %d; output:\n%s\nwant it to contain %q", c.args, code, c.code, out, c.out)
		}
	}
}

func tempFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func readFile(t *testing.T, f *os.File) string {
	t.Helper()
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
