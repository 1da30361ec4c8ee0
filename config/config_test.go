package config

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsgi-exporter/wsgi_exporter/internal/testcert"
)

// writeFiles writes name -> content under a new directory and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func mustLoad(t *testing.T, files map[string]string) *File {
	t.Helper()
	dir := writeFiles(t, files)
	f, err := Load(filepath.Join(dir, "wsgi.yml"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return f
}

func loadErr(t *testing.T, files map[string]string) (string, string) {
	t.Helper()
	dir := writeFiles(t, files)
	path := filepath.Join(dir, "wsgi.yml")
	_, err := Load(path)
	if err == nil {
		t.Fatalf("Load succeeded, want an error")
	}
	return err.Error(), path
}

func TestLoadFullExample(t *testing.T) {
	f := mustLoad(t, map[string]string{
		"nginx.pw": "s3cr3t-pw\n",
		"wsgi.yml": `global:
  timeout: 4s
sources:
  - kind: uwsgi
    name: shop
    address: unix:///run/uwsgi/shop.sock
    labels: {team: shop, env: prod}
    timeout: 2s
    uwsgi:
      max_response_size: 8MiB
      collect_cores: true
  - kind: nginx
    address: http://127.0.0.1:8080/stub_status
    nginx:
      host_header: status.local
      basic_auth:
        username: exporter
        password_file: nginx.pw
  - kind: multiproc
    address: /run/app/metrics
    multiproc:
      max_bytes: 0
      mmap: false
      dir_label: always
  - kind: gunicorn
    address: /run/gunicorn/app.pid
  - kind: gunicorn_statsd
    address: 127.0.0.1:9125
    gunicorn_statsd:
      tag_labels: [app]
      max_series: 32
modules:
  uwsgi:
    kind: uwsgi
    timeout: 3s
    allow:
      addresses: [10.0.0.0/8, "*.pods.example.com:1717"]
      unix_sockets: [/run/uwsgi]
  mp:
    kind: multiproc
    allow:
      paths: [/run/apps]
`,
	})
	if len(f.Sources) != 5 || len(f.Modules) != 2 {
		t.Fatalf("got %d sources, %d modules", len(f.Sources), len(f.Modules))
	}
	if time.Duration(f.Global.Timeout) != 4*time.Second {
		t.Errorf("global timeout %v", time.Duration(f.Global.Timeout))
	}
	u := f.Sources[0]
	if u.Kind != KindUWSGI || u.Name != "shop" || u.Labels["team"] != "shop" || time.Duration(u.Timeout) != 2*time.Second ||
		u.UWSGI == nil || u.UWSGI.MaxResponseSize != 8<<20 || !u.UWSGI.CollectCores {
		t.Errorf("uwsgi source: %+v %+v", u, u.UWSGI)
	}
	if u.Line != 4 || u.Where() != f.Path+":4" || u.Key != "uwsgi unix:///run/uwsgi/shop.sock" {
		t.Errorf("uwsgi source place %d %q key %q", u.Line, u.Where(), u.Key)
	}
	n := f.Sources[1]
	if n.Nginx.BasicAuth.Password.Reveal() != "s3cr3t-pw" || n.Nginx.HostHeader != "status.local" || n.Line != 12 {
		t.Errorf("nginx source: %+v line %d", n.Nginx, n.Line)
	}
	mp := f.Sources[2].Multiproc
	if mp.MaxBytes == nil || *mp.MaxBytes != 0 || mp.Mmap == nil || *mp.Mmap || mp.DirLabel != "always" {
		t.Errorf("multiproc settings %+v", mp)
	}
	if s := f.Sources[4]; s.GunicornStatsd.MaxSeries != 32 || s.GunicornStatsd.TagLabels[0] != "app" || s.Key != "gunicorn_statsd udp://127.0.0.1:9125" {
		t.Errorf("statsd %+v key %q", s.GunicornStatsd, s.Key)
	}
	m := f.Modules["uwsgi"]
	if m.Name != "uwsgi" || m.Line != 33 || time.Duration(m.Timeout) != 3*time.Second || len(m.Allow.addrs) != 2 {
		t.Errorf("module %+v", m)
	}
}

func TestEmptyFile(t *testing.T) {
	for _, content := range []string{"", "# nothing\n", "---\n"} {
		f, err := Parse([]byte(content), "e.yml")
		if err != nil || len(f.Sources) != 0 || len(f.Modules) != 0 {
			t.Errorf("%q: %v %+v", content, err, f)
		}
	}
}

// Every problem names the file and the line; the test's expectations are exact.
func TestProblemsNameFileAndLine(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string // substrings, each prefixed by "<path>:"
	}{
		{"unknown top key", "sourcez: []\n", []string{`1: top level: unknown key "sourcez" (known keys: global, modules, sources)`}},
		{"unknown source key", "sources:\n  - kind: uwsgi\n    adress: x:1\n", []string{
			`3: sources[0]: unknown key "adress" (known keys: address, gunicorn_statsd, kind, labels, multiproc, multiproc_redis, name, nginx, timeout, uwsgi)`}},
		{"unknown nested key", "sources:\n  - kind: nginx\n    address: http://a:1/\n    nginx:\n      basic_auth:\n        username: u\n        pasword_file: x\n", []string{
			`7: sources[0].nginx.basic_auth: unknown key "pasword_file" (known keys: password_file, username)`}},
		{"inline secret", "sources:\n  - kind: nginx\n    address: http://a:1/\n    nginx:\n      basic_auth:\n        username: u\n        password: hunter2\n", []string{
			`7: sources[0].nginx.basic_auth: unknown key "password": secrets are read only from files (password_file), never written in the configuration`}},
		{"duplicate key", "sources:\n  - kind: uwsgi\n    address: a:1\n    kind: nginx\n", []string{
			`4: sources[0]: key "kind" given twice (first at line 2)`}},
		{"duplicate module", "modules:\n  a: {kind: uwsgi, allow: {addresses: [10.0.0.1]}}\n  a: {kind: uwsgi, allow: {addresses: [10.0.0.1]}}\n", []string{
			`3: modules: key "a" given twice (first at line 2)`}},
		{"bad duration", "global:\n  timeout: soon\n", []string{`2: want a duration such as 5s or 500ms`}},
		{"bad size", "sources:\n  - kind: uwsgi\n    address: a:1\n    uwsgi: {max_response_size: lots}\n", []string{`4: want a size such as 32MiB or 65536`}},
		{"type error hides value", "sources:\n  - kind: uwsgi\n    address: a:1\n    uwsgi: {collect_cores: hunter2}\n", []string{`4: cannot unmarshal !!str a value into bool`}},
		// The YAML library's syntax errors give the line where the construct began.
		{"syntax", "sources:\n  - kind: uwsgi\n\taddress: a:1\n", []string{`found a tab character that violates indentation`}},
		{"no kind", "sources:\n  - address: a:1\n", []string{`2: sources[0]: kind is missing (one of uwsgi, nginx, multiproc, gunicorn, gunicorn_statsd, multiproc_redis)`}},
		{"unknown kind", "sources:\n  - {kind: apache, address: a:1}\n", []string{`2: sources[0]: unknown kind "apache"`}},
		{"no address", "sources:\n  - {kind: uwsgi}\n", []string{`2: sources[0]: address is missing`}},
		{"bad address", "sources:\n  - {kind: uwsgi, address: \"gopher://x\"}\n", []string{`2: sources[0]: stats address "gopher://x": unknown scheme "gopher"`}},
		{"relative multiproc", "sources:\n  - {kind: multiproc, address: metrics}\n", []string{`2: sources[0]: the multiprocess directory "metrics" must be an absolute path`}},
		{"other kind's block", "sources:\n  - kind: uwsgi\n    address: a:1\n    nginx: {host_header: x}\n", []string{
			`2: sources[0]: a nginx block in a uwsgi entry: only the block of the entry's kind is allowed`}},
		{"bad label", "sources:\n  - {kind: uwsgi, address: a:1, labels: {1x: y}}\n", []string{`2: sources[0]: "1x" is not a valid label name`}},
		{"auth without password file", "sources:\n  - kind: nginx\n    address: http://a:1/\n    nginx: {basic_auth: {username: u}}\n", []string{
			`2: sources[0]: nginx.basic_auth: password_file is missing`}},
		{"module statsd", "modules:\n  s: {kind: gunicorn_statsd, allow: {addresses: [10.0.0.1]}}\n", []string{
			`2: modules.s: a gunicorn_statsd listener receives datagrams: it cannot be probed`}},
		{"module empty allow", "modules:\n  u: {kind: uwsgi}\n", []string{`2: modules.u: allow: lists nothing: every target would be refused`}},
		{"module wrong list", "modules:\n  u: {kind: uwsgi, allow: {paths: [/run]}}\n", []string{
			`2: modules.u: allow: paths does not apply to a uwsgi module (it does to multiproc, gunicorn)`}},
		{"module bad rule", "modules:\n  u: {kind: uwsgi, allow: {addresses: [\"10.0.0.0/8:http\"]}}\n", []string{
			`2: modules.u: allow: addresses: "10.0.0.0/8:http": the port must be 1 to 65535 or *`}},
		{"module relative dir", "modules:\n  u: {kind: uwsgi, allow: {unix_sockets: [run/uwsgi]}}\n", []string{
			`2: modules.u: allow: unix_sockets: "run/uwsgi" is not an absolute directory path`}},
		{"module bad name", "modules:\n  \"a b\": {kind: uwsgi, allow: {addresses: [10.0.0.1]}}\n", []string{
			`2: modules.a b: a module name is 1 to 64 letters`}},
		{"several", "sources:\n  - {kind: uwsgi}\n  - {kind: nginx}\n", []string{
			`2 problems:`, `2: sources[0]: address is missing`, `3: sources[1]: address is missing`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg, path := loadErr(t, map[string]string{"wsgi.yml": c.yaml})
			for _, w := range c.want {
				if w != "2 problems:" && w[0] >= '0' && w[0] <= '9' {
					w = path + ":" + w
				}
				if !strings.Contains(msg, w) {
					t.Errorf("error\n%s\ndoes not contain\n%s", msg, w)
				}
			}
			if strings.Contains(msg, "hunter2") {
				t.Errorf("the error shows the value: %s", msg)
			}
		})
	}
}

// The same source twice, spelled differently, names both lines; so does a repeated name.
func TestDuplicateSources(t *testing.T) {
	msg, path := loadErr(t, map[string]string{"wsgi.yml": `sources:
  - kind: uwsgi
    address: 127.0.0.1:1717
  - kind: nginx
    address: http://127.0.0.1:1717/
  - kind: uwsgi
    address: tcp://127.0.0.1:1717
  - kind: uwsgi
    name: shop
    address: unix:///run/a.sock
  - kind: uwsgi
    name: shop
    address: unix:///run/b.sock
  - {kind: multiproc, address: /run/m/}
  - {kind: multiproc, address: /run/x/../m}
`})
	for _, w := range []string{
		path + ":6: sources[2]: uwsgi tcp://127.0.0.1:1717 is already configured at " + path + ":2: give each source once",
		path + ":11: sources[4]: a uwsgi source named \"shop\" is already configured at " + path + ":8",
		path + ":15: sources[6]: multiproc /run/m is already configured at " + path + ":14",
	} {
		if !strings.Contains(msg, w) {
			t.Errorf("error\n%s\ndoes not contain\n%s", msg, w)
		}
	}
	if strings.Count(msg, "already configured") != 3 {
		t.Errorf("want exactly 3 duplicates:\n%s", msg)
	}
}

func TestSecretsFromFiles(t *testing.T) {
	t.Run("missing file names the path only", func(t *testing.T) {
		msg, path := loadErr(t, map[string]string{"wsgi.yml": "sources:\n  - kind: nginx\n    address: http://a:1/\n    nginx: {basic_auth: {username: u, password_file: nope.pw}}\n"})
		want := path + ":2: sources[0]: nginx.basic_auth.password_file: " + filepath.Join(filepath.Dir(path), "nope.pw") + ": no such file or directory"
		if msg != want {
			t.Errorf("got  %s\nwant %s", msg, want)
		}
	})
	t.Run("a directory is refused", func(t *testing.T) {
		msg, _ := loadErr(t, map[string]string{"d/x": "", "wsgi.yml": "sources:\n  - kind: nginx\n    address: http://a:1/\n    nginx: {basic_auth: {username: u, password_file: d}}\n"})
		if !strings.Contains(msg, "is not a regular file") {
			t.Error(msg)
		}
	})
	t.Run("never printed", func(t *testing.T) {
		f := mustLoad(t, map[string]string{"pw": "hunter2\r\n", "wsgi.yml": "sources:\n  - kind: nginx\n    address: http://a:1/\n    nginx: {basic_auth: {username: u, password_file: pw}}\n"})
		a := f.Sources[0].Nginx.BasicAuth
		if a.Password.Reveal() != "hunter2" {
			t.Fatalf("password %q", a.Password.Reveal())
		}
		var logged strings.Builder
		slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "auth", a, "pw", a.Password)
		slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "auth", a, "pw", a.Password)
		out := fmt.Sprintf("%v %+v %#v %s %q %x", a, a, a, a.Password, a.Password, a.Password) + logged.String() + string(dump(f))
		if strings.Contains(out, "hunter2") {
			t.Errorf("secret printed: %s", out)
		}
		if !strings.Contains(out, "<secret>") {
			t.Errorf("placeholder missing: %s", out)
		}
	})
	t.Run("TLS files", func(t *testing.T) {
		caCert := testcert.New(t, "ca", nil)
		dir := t.TempDir()
		ca, _ := caCert.Write(t, dir, "ca")
		cert, key := testcert.New(t, "client", caCert).Write(t, dir, "client")
		f := mustLoad(t, map[string]string{"wsgi.yml": fmt.Sprintf("sources:\n  - kind: nginx\n    address: https://a:1/\n    nginx: {tls: {ca_file: %s, cert_file: %s, key_file: %s}}\n", ca, cert, key)})
		c := f.Sources[0].Nginx.TLS.Config()
		if c == nil || c.RootCAs == nil || len(c.Certificates) != 1 {
			t.Errorf("TLS config %+v", c)
		}
		msg, _ := loadErr(t, map[string]string{"k": "not a key", "wsgi.yml": fmt.Sprintf("sources:\n  - kind: nginx\n    address: https://a:1/\n    nginx: {tls: {cert_file: %s, key_file: k}}\n", cert)})
		if !strings.Contains(msg, "nginx.tls: loading the client certificate") || strings.Contains(msg, "not a key") {
			t.Error(msg)
		}
	})
}

// A fingerprint changes with the definition and with the content of the files it names.
func TestFingerprint(t *testing.T) {
	dir := writeFiles(t, map[string]string{"pw": "one"})
	src := "sources:\n  - kind: nginx\n    address: http://a:1/\n    nginx: {basic_auth: {username: u, password_file: pw}}\n  - {kind: gunicorn_statsd, address: \"127.0.0.1:9125\"}\n"
	load := func(content string) *File {
		t.Helper()
		f, err := Parse([]byte(content), filepath.Join(dir, "wsgi.yml"))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	a := load(src)
	b := load("# a comment moves every line\n" + src)
	if a.Sources[0].Fingerprint() != b.Sources[0].Fingerprint() || a.Sources[1].Fingerprint() != b.Sources[1].Fingerprint() {
		t.Error("the same definitions have different fingerprints")
	}
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := load(src)
	if c.Sources[0].Fingerprint() == a.Sources[0].Fingerprint() {
		t.Error("a new password keeps the fingerprint")
	}
	if c.Sources[1].Fingerprint() != a.Sources[1].Fingerprint() {
		t.Error("an unchanged statsd source changed its fingerprint")
	}
	d := load(strings.Replace(src, "\"127.0.0.1:9125\"}", "\"127.0.0.1:9125\", labels: {a: b}}", 1))
	if d.Sources[1].Fingerprint() == a.Sources[1].Fingerprint() {
		t.Error("new labels keep the fingerprint")
	}
}

// Aliases that expand to a huge tree are checked in linear time and refused by the decoder.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("x0: &x0 [{kind: uwsgi, address: \"a:1\"}]\n")
	for i := 1; i < 40; i++ {
		fmt.Fprintf(&b, "x%d: &x%d [*x%d, *x%d, *x%d, *x%d]\n", i, i, i-1, i-1, i-1, i-1)
	}
	b.WriteString("sources: *x39\n")
	// The same under a known key, where the key check lets it through to the decoder.
	var c strings.Builder
	c.WriteString("sources:\n  - kind: uwsgi\n    address: \"a:1\"\n    gunicorn_statsd:\n      tag_labels: &x0 [a, b]\n")
	for i := 1; i < 40; i++ {
		fmt.Fprintf(&c, "  - &x%d [*x%d, *x%d, *x%d, *x%d]\n", i, i-1, i-1, i-1, i-1)
	}
	for _, doc := range []string{b.String(), c.String()} {
		start := time.Now()
		_, err := Parse([]byte(doc), "bomb.yml")
		if err == nil {
			t.Fatal("accepted")
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("took %v", d)
		}
		t.Log(err)
	}
}

func TestRedisSources(t *testing.T) {
	f := mustLoad(t, map[string]string{"redis.pw": "pw\n", "wsgi.yml": `sources:
  - kind: multiproc_redis
    address: redis://exporter@10.0.0.5:6379/2
    multiproc_redis: {password_file: redis.pw, key_prefix: shop, max_bytes: 1MiB, vanished: drop, resume_window: 10m, url_label: always}
modules:
  redis: {kind: multiproc_redis, allow: {addresses: ["10.0.0.0/8:6379"], unix_sockets: [/run/redis]}}
`})
	s := f.Sources[0]
	r := s.MultiprocRedis
	if s.Key != "multiproc_redis redis://10.0.0.5:6379/2" || r.Password.Reveal() != "pw" || r.KeyPrefix != "shop" || *r.MaxBytes != 1<<20 ||
		r.Vanished != "drop" || time.Duration(r.ResumeWindow) != 10*time.Minute || r.URLLabel != "always" {
		t.Errorf("%+v %+v", s, r)
	}
	m := f.Modules["redis"]
	for target, want := range map[string]string{
		"redis://10.1.1.1":          "ok",
		"rediss://10.1.1.1:6379/3":  "ok",
		"redis://10.1.1.1:6380":     "403 address",
		"redis://u:p@10.1.1.1:6379": "400",
		"unix:///run/redis/r.sock":  "down connect",
		"unix:///run/x/r.sock":      "403 path",
	} {
		ad, err := m.Check(target)
		if got := outcome(ad, err); got != want {
			t.Errorf("%s: %s, want %s (%v)", target, got, want, err)
		}
	}
	for _, bad := range []string{
		"sources:\n  - {kind: multiproc_redis, address: \"redis://u:secret@h:1\"}\n",
		"sources:\n  - {kind: multiproc_redis, address: \"http://h:1\"}\n",
		"sources:\n  - {kind: multiproc_redis, address: \"redis://h:1\", multiproc_redis: {vanished: maybe}}\n",
	} {
		msg, _ := loadErr(t, map[string]string{"wsgi.yml": bad})
		if strings.Contains(msg, "secret") {
			t.Errorf("the password is shown: %s", msg)
		}
	}
}

// The full example of docs/configuration.md is valid, with the files it names.
func TestDocsExample(t *testing.T) {
	b, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "## A full example\n\n```yaml\n")
	example, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("no example in docs/configuration.md")
	}
	dir := t.TempDir()
	ca := testcert.New(t, "ca", nil)
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), ca.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cert, key := testcert.New(t, "client", ca).Write(t, dir, "client")
	if err := os.Rename(key, filepath.Join(dir, "client.key")); err != nil {
		t.Fatal(err)
	}
	_ = cert // client.pem
	for _, f := range []string{"nginx-status.password", "redis.password"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("pw\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f, err := Parse([]byte(example), filepath.Join(dir, "wsgi.yml"))
	if err != nil {
		t.Fatalf("the documented example: %v", err)
	}
	if len(f.Sources) != 6 || len(f.Modules) != 1 {
		t.Errorf("%d sources, %d modules", len(f.Sources), len(f.Modules))
	}
}
