package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wsgi-exporter/wsgi_exporter/internal/redistest"
)

// stats is a captured uWSGI stats document (fixtures/uwsgi/README.md).
func stats(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("../../fixtures/uwsgi/tcp_4workers_cache_idle.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// liveStats serves doc, with its version replaced by version, to every connection on a unix
// socket at path.
func liveStats(t testing.TB, path string, doc []byte, version string) {
	t.Helper()
	doc = bytes.Replace(doc, []byte(`"2.0.21-debian"`), []byte(`"`+version+`"`), 1)
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = c.Write(doc)
			}()
		}
	}()
}

// hungStats accepts connections on a unix socket at path and never answers.
func hungStats(t testing.TB, path string) {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
}

// deadStats leaves a socket file nobody listens on (connection refused).
func deadStats(t testing.TB, path string) {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
}

// writeConfig writes a configuration file and returns its path.
func writeConfig(t testing.TB, dir, content string) string {
	t.Helper()
	p := filepath.Join(dir, "wsgi.yml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// probeServer serves the mux of a command line.
func probeServer(t *testing.T, args ...string) (*fleet, *httptest.Server) {
	t.Helper()
	fl := testFleet(t, args...)
	mux, err := newMux(fl, "/metrics", false, true)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return fl, srv
}

// get fetches a URL with the scrape timeout header (when not empty) and parses the answer.
func get(t testing.TB, u, scrapeTimeout string) (int, map[string]*dto.MetricFamily, string) {
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Error(err)
		return 0, nil, ""
	}
	if scrapeTimeout != "" {
		req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", scrapeTimeout)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, nil, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil, string(body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Errorf("%s: %v", u, err)
	}
	return resp.StatusCode, mfs, string(body)
}

func probeURL(base, module, target string) string {
	return base + "/probe?" + url.Values{"module": {module}, "target": {target}}.Encode()
}

// only returns the value of the single series of a family, and its labels.
func only(mfs map[string]*dto.MetricFamily, name string) (float64, map[string]string, error) {
	mf := mfs[name]
	if mf == nil || len(mf.Metric) != 1 {
		return 0, nil, fmt.Errorf("%s: want one series, got %v", name, mf)
	}
	m := mf.Metric[0]
	labels := map[string]string{}
	for _, l := range m.Label {
		labels[l.GetName()] = l.GetValue()
	}
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue(), labels, nil
	case m.Counter != nil:
		return m.Counter.GetValue(), labels, nil
	}
	return 0, labels, fmt.Errorf("%s: not a gauge or counter", name)
}

// failedReason is the reason wsgi_exporter_probe_failed reports, "" when none.
func failedReason(mfs map[string]*dto.MetricFamily) string {
	reason := ""
	for _, m := range mfs["wsgi_exporter_probe_failed"].GetMetric() {
		if m.GetGauge().GetValue() == 1 {
			for _, l := range m.Label {
				reason += l.GetValue()
			}
		}
	}
	return reason
}

// TestProbeConcurrentIsolation runs rounds of 64 concurrent probes over live, dead and hung
// targets and checks every answer exactly: the target's own up, its own version (each live
// server reports a different one), the failure reason. The uwsgi_exporter peer's /probe
// reported up 0 for 123 of 300 healthy probes under 16 concurrent probes.
func TestProbeConcurrentIsolation(t *testing.T) {
	dir := t.TempDir()
	doc := stats(t)
	const live, dead, hung = 24, 20, 20 // 64 targets, one probe each per round
	type target struct {
		addr, kind, version string
	}
	var targets []target
	for i := range live {
		p := filepath.Join(dir, fmt.Sprintf("live%d.sock", i))
		v := fmt.Sprintf("2.0.21-live%d", i)
		liveStats(t, p, doc, v)
		targets = append(targets, target{"unix://" + p, "live", v})
	}
	for i := range dead {
		p := filepath.Join(dir, fmt.Sprintf("dead%d.sock", i))
		if i%2 == 0 {
			deadStats(t, p) // refused
		} // else: no socket at all
		targets = append(targets, target{"unix://" + p, "dead", ""})
	}
	for i := range hung {
		p := filepath.Join(dir, fmt.Sprintf("hung%d.sock", i))
		hungStats(t, p)
		targets = append(targets, target{"unix://" + p, "hung", ""})
	}
	cfg := writeConfig(t, dir, fmt.Sprintf("modules:\n  uwsgi:\n    kind: uwsgi\n    allow: {unix_sockets: [%s]}\n", dir))
	_, srv := probeServer(t, "--config.file="+cfg, "--probe.max-concurrent=64")

	const rounds = 3
	var mu sync.Mutex
	counts := map[string]int{}
	for range rounds {
		var wg sync.WaitGroup
		for _, tg := range targets {
			wg.Go(func() {
				// A hung target never answers: its probe times out whatever its deadline,
				// so it gets a short one (1 s announced, less the 500ms offset). The others
				// get 20 s, which no load on the machine makes them reach: the outcome of
				// every probe is decided by its target alone, never by timing.
				timeout := "20"
				if tg.kind == "hung" {
					timeout = "1"
				}
				code, mfs, body := get(t, probeURL(srv.URL, "uwsgi", tg.addr), timeout)
				if code != http.StatusOK {
					t.Errorf("%s: %d %s", tg.addr, code, body)
					return
				}
				up, labels, err := only(mfs, "uwsgi_up")
				if err != nil {
					t.Error(err)
					return
				}
				if labels["stats_uri"] != tg.addr {
					t.Errorf("probe of %s answered for %s", tg.addr, labels["stats_uri"])
				}
				got := fmt.Sprintf("up=%v reason=%s", up, failedReason(mfs))
				if up == 1 {
					_, vl, err := only(mfs, "uwsgi_version_info")
					if err != nil {
						t.Error(err)
					}
					got += " version=" + vl["version"]
				}
				mu.Lock()
				counts[tg.kind+" "+got]++
				mu.Unlock()
			})
		}
		wg.Wait() // 64 probes at once, then the next round
	}
	want := map[string]int{}
	for _, tg := range targets {
		switch tg.kind {
		case "live":
			want["live up=1 reason= version="+tg.version] += rounds
		case "dead":
			want["dead up=0 reason=connect"] += rounds
		case "hung":
			want["hung up=0 reason=timeout"] += rounds
		}
	}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("answers:\n%v\nwant:\n%v", counts, want)
	}
}

// Targets outside the allow-list are refused (403) and counted by reason; unknown modules and
// bad targets are 400.
func TestProbeRefusals(t *testing.T) {
	dir := t.TempDir()
	allowed := filepath.Join(dir, "allowed")
	secret := filepath.Join(dir, "secret")
	for _, d := range []string{allowed, secret} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	doc := stats(t)
	liveStats(t, filepath.Join(allowed, "a.sock"), doc, "allowed")
	liveStats(t, filepath.Join(secret, "s.sock"), doc, "secret")
	if err := os.Symlink(filepath.Join(secret, "s.sock"), filepath.Join(allowed, "link.sock")); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, fmt.Sprintf(`modules:
  uwsgi:
    kind: uwsgi
    allow:
      unix_sockets: [%s]
      addresses: ["127.0.0.1:1717"]
  mp:
    kind: multiproc
    allow: {paths: [%s]}
`, allowed, allowed))
	_, srv := probeServer(t, "--config.file="+cfg)
	cases := []struct {
		module, target string
		code           int
		reason         string // counted reason; "" for a probe that ran
	}{
		{"uwsgi", "unix://" + allowed + "/a.sock", 200, ""},
		{"uwsgi", "unix://" + allowed + "/../secret/s.sock", 403, "path"},
		{"uwsgi", "unix://" + secret + "/s.sock", 403, "path"},
		{"uwsgi", "unix://" + allowed + "/link.sock", 403, "symlink"},
		{"uwsgi", "file:///etc/passwd", 403, "scheme"},
		{"uwsgi", "file://" + allowed + "/a.sock", 403, "scheme"},
		{"uwsgi", "127.0.0.1:1717", 200, ""},
		{"uwsgi", "127.0.0.1:22", 403, "address"},
		{"uwsgi", "169.254.169.254:80", 403, "address"},
		{"uwsgi", "localhost:1717", 403, "address"},
		{"uwsgi", "unix://" + allowed + "/*.sock", 400, "bad_target"},
		{"uwsgi", "", 400, "bad_target"},
		{"mp", "/etc", 403, "path"},
		{"mp", allowed + "/../secret", 403, "path"},
		{"nope", "127.0.0.1:1717", 400, "unknown_module"},
	}
	for _, c := range cases {
		code, mfs, body := get(t, probeURL(srv.URL, c.module, c.target), "")
		if code != c.code {
			t.Errorf("%s %q: %d %s, want %d", c.module, c.target, code, body, c.code)
		}
		if code == 200 && c.target == "unix://"+allowed+"/a.sock" {
			if _, vl, err := only(mfs, "uwsgi_version_info"); err != nil || vl["version"] != "allowed" {
				t.Errorf("allowed target: %v %v", vl, err)
			}
		}
		if strings.Contains(body, "secret\"") {
			t.Errorf("%q: the answer shows the refused target's content", c.target)
		}
	}
	_, mfs, _ := get(t, srv.URL+"/metrics", "")
	got := map[string]float64{}
	for _, m := range mfs["wsgi_exporter_probe_refused_total"].GetMetric() {
		l := map[string]string{}
		for _, p := range m.Label {
			l[p.GetName()] = p.GetValue()
		}
		if v := m.GetCounter().GetValue(); v != 0 {
			got[l["module"]+"/"+l["reason"]] = v
		}
	}
	want := map[string]float64{}
	for _, c := range cases {
		if c.reason != "" {
			m := c.module
			if c.reason == "unknown_module" {
				m = ""
			}
			want[m+"/"+c.reason]++
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("refusals counted %v, want %v", got, want)
	}
	if v, _, err := only(filterLabel(mfs, "wsgi_exporter_probes_total", "module", "uwsgi"), "wsgi_exporter_probes_total"); err != nil || v != 2 {
		t.Errorf("probes of uwsgi: %v %v, want 2", v, err)
	}
}

// filterLabel keeps the series of a family whose label has value.
func filterLabel(mfs map[string]*dto.MetricFamily, name, label, value string) map[string]*dto.MetricFamily {
	mf := mfs[name]
	if mf == nil {
		return nil
	}
	out := &dto.MetricFamily{Name: mf.Name, Type: mf.Type}
	for _, m := range mf.Metric {
		for _, l := range m.Label {
			if l.GetName() == label && l.GetValue() == value {
				out.Metric = append(out.Metric, m)
			}
		}
	}
	return map[string]*dto.MetricFamily{name: out}
}

// Beyond --probe.max-concurrent probes at once, a probe is answered 503 and counted.
func TestProbeConcurrencyLimit(t *testing.T) {
	dir := t.TempDir()
	hungStats(t, filepath.Join(dir, "h.sock"))
	cfg := writeConfig(t, dir, fmt.Sprintf("modules:\n  uwsgi:\n    kind: uwsgi\n    timeout: 3s\n    allow: {unix_sockets: [%s]}\n", dir))
	fl, srv := probeServer(t, "--config.file="+cfg, "--probe.max-concurrent=2")
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			code, mfs, _ := get(t, probeURL(srv.URL, "uwsgi", "unix://"+dir+"/h.sock"), "")
			if code != 200 || failedReason(mfs) != "timeout" {
				t.Errorf("hung probe: %d %s", code, failedReason(mfs))
			}
		})
	}
	WaitUntil(t, func() bool { return len(fl.prober.sem) == 2 })
	code, _, body := get(t, probeURL(srv.URL, "uwsgi", "unix://"+dir+"/h.sock"), "")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "--probe.max-concurrent") {
		t.Errorf("third probe: %d %s", code, body)
	}
	wg.Wait()
	_, mfs, _ := get(t, srv.URL+"/metrics", "")
	if v, _, _ := only(filterLabel(filterLabel(mfs, "wsgi_exporter_probe_refused_total", "module", "uwsgi"), "wsgi_exporter_probe_refused_total", "reason", "concurrency_limit"), "wsgi_exporter_probe_refused_total"); v != 1 {
		t.Errorf("concurrency_limit refusals %v, want 1", v)
	}
}

// A token in a probe target's query is sent to the target, never shown: the label hides its
// value, as for every source.
func TestProbeHidesQueryValues(t *testing.T) {
	dir := t.TempDir()
	var gotQuery string
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotQuery = r.URL.RawQuery
		_, _ = io.WriteString(w, "Active connections: 1 \nserver accepts handled requests\n 1 1 1 \nReading: 0 Writing: 1 Waiting: 0 \n")
	}))
	defer page.Close()
	cfg := writeConfig(t, dir, "modules:\n  nginx: {kind: nginx, allow: {addresses: [127.0.0.1]}}\n")
	_, srv := probeServer(t, "--config.file="+cfg)
	target := page.URL + "/stub_status?token=s3cr3t"
	code, mfs, body := get(t, probeURL(srv.URL, "nginx", target), "")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	up, labels, err := only(mfs, "nginx_up")
	if err != nil || up != 1 || labels["source"] != page.URL+"/stub_status?token=xxxxx" {
		t.Errorf("nginx_up %v %v %v", up, labels, err)
	}
	if gotQuery != "token=s3cr3t" {
		t.Errorf("the page got query %q", gotQuery)
	}
	if strings.Contains(body, "s3cr3t") {
		t.Errorf("the answer shows the token:\n%s", body)
	}
}

// copyDir copies the regular files of src into a new directory dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Local paths: a multiprocess directory and a gunicorn pidfile below the module's directories
// are read; a missing one is down with not_found; a symlink out is refused.
func TestProbeLocalPaths(t *testing.T) {
	dir := t.TempDir()
	apps := filepath.Join(dir, "apps")
	copyDir(t, "../../fixtures/multiproc/dirs/small_016", filepath.Join(apps, "shop"))
	copyDir(t, "../../fixtures/multiproc/dirs/small_016", filepath.Join(dir, "outside"))
	if err := os.Symlink(filepath.Join(dir, "outside"), filepath.Join(apps, "escape")); err != nil {
		t.Fatal(err)
	}
	pids := filepath.Join(dir, "pids")
	if err := os.Mkdir(pids, 0o755); err != nil {
		t.Fatal(err)
	}
	// A shell whose command line names gunicorn stands for a master without workers: it
	// waits on a pipe (a builtin read, no child process) and is stopped by its pid.
	stdin, hold, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	master := exec.Command("/bin/sh", "-c", "read x", "gunicorn")
	master.Stdin = stdin
	if err := master.Start(); err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	t.Cleanup(func() { hold.Close(); _ = master.Process.Kill(); _ = master.Wait() })
	if err := os.WriteFile(filepath.Join(pids, "app.pid"), []byte(fmt.Sprintf("%d\n", master.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, fmt.Sprintf(`modules:
  mp: {kind: multiproc, allow: {paths: [%s]}}
  gunicorn: {kind: gunicorn, allow: {paths: [%s]}}
`, apps, pids))
	_, srv := probeServer(t, "--config.file="+cfg)
	for _, c := range []struct {
		module, target, want string
	}{
		{"mp", filepath.Join(apps, "shop"), "multiproc_up=1 reason="},
		{"mp", filepath.Join(apps, "missing"), "multiproc_up=0 reason=not_found"},
		{"mp", filepath.Join(apps, "escape"), "403"},
		{"gunicorn", filepath.Join(pids, "app.pid"), "gunicorn_up=1 reason="},
		{"gunicorn", filepath.Join(pids, "gone.pid"), "gunicorn_up=0 reason=not_found"},
	} {
		code, mfs, body := get(t, probeURL(srv.URL, c.module, c.target), "")
		got := fmt.Sprint(code)
		if code == 200 {
			name := c.module + "_up"
			if c.module == "mp" {
				name = "multiproc_up"
			}
			up, labels, err := only(mfs, name)
			if err != nil {
				t.Errorf("%s: %v\n%s", c.target, err, body)
				continue
			}
			for _, v := range labels {
				if v != c.target {
					t.Errorf("%s: label %v", c.target, labels)
				}
			}
			got = fmt.Sprintf("%s=%v reason=%s", name, up, failedReason(mfs))
		}
		if got != c.want {
			t.Errorf("%s %s: %s, want %s\n%s", c.module, c.target, got, c.want, body)
		}
	}
	// The directory's application series are served, without the multiproc_dir label.
	_, mfs, body := get(t, probeURL(srv.URL, "mp", filepath.Join(apps, "shop")), "")
	n := 0
	for name, mf := range mfs {
		if strings.HasPrefix(name, "multiproc_") || strings.HasPrefix(name, "wsgi_exporter_") {
			continue
		}
		n++
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if l.GetName() == "multiproc_dir" {
					t.Fatalf("%s has multiproc_dir", name)
				}
			}
		}
	}
	if n == 0 {
		t.Errorf("no application series:\n%s", body)
	}
}

// A Redis store module: a real redis-server on TCP and on a unix socket (pinned), the
// password from the module's file; targets outside the allow-list are refused.
func TestProbeRedisStore(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	dir := t.TempDir()
	pw := filepath.Join(dir, "redis.pw")
	if err := os.WriteFile(pw, []byte(redistest.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, fmt.Sprintf(`modules:
  redis:
    kind: multiproc_redis
    multiproc_redis: {password_file: redis.pw}
    allow:
      addresses: ["127.0.0.1:%d"]
      unix_sockets: [%s]
`, srv.Port, filepath.Dir(srv.Socket)))
	_, hs := probeServer(t, "--config.file="+cfg)
	for target, want := range map[string]string{
		fmt.Sprintf("redis://127.0.0.1:%d/0", srv.Port):    "up=1 reason=",
		"unix://" + srv.Socket + "?db=0":                   "up=1 reason=",
		fmt.Sprintf("redis://127.0.0.1:%d/0", srv.Port+1):  "403",
		"redis://10.0.0.1:6379":                            "403",
		"unix:///tmp/other.sock":                           "403",
		fmt.Sprintf("redis://u:pw@127.0.0.1:%d", srv.Port): "400",
		"http://127.0.0.1/":                                "400",
	} {
		code, mfs, body := get(t, probeURL(hs.URL, "redis", target), "")
		got := fmt.Sprint(code)
		if code == 200 {
			up, labels, err := only(mfs, "multiproc_redis_up")
			if err != nil {
				t.Errorf("%s: %v", target, err)
				continue
			}
			if labels["redis_url"] != target {
				t.Errorf("%s: label %v", target, labels)
			}
			got = fmt.Sprintf("up=%v reason=%s", up, failedReason(mfs))
		}
		if got != want {
			t.Errorf("%s: %s, want %s\n%s", target, got, want, body)
		}
		if strings.Contains(body, redistest.Password) {
			t.Errorf("%s: the password is in the answer", target)
		}
	}
}

// A probe's one-off source leaves no connection behind: the kept-alive connection to an
// http(s) uWSGI stats server or nginx page is closed once the answer is written, so a fan-out
// over many targets does not hold one idle connection per target.
func TestProbeLeavesNoIdleConnection(t *testing.T) {
	doc := stats(t)
	const nginxPage = "Active connections: 1 \nserver accepts handled requests\n 1 1 1 \nReading: 0 Writing: 1 Waiting: 0 \n"
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	opened := 0
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stub_status" {
			_, _ = io.WriteString(w, nginxPage)
			return
		}
		_, _ = w.Write(doc)
	}))
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		switch s {
		case http.StateNew:
			open[c] = true
			opened++
		case http.StateClosed, http.StateHijacked:
			delete(open, c)
		}
	}
	srv.Start()
	defer srv.Close()

	dir := t.TempDir()
	cfg := writeConfig(t, dir, "modules:\n"+
		"  uwsgi: {kind: uwsgi, allow: {addresses: [127.0.0.1]}}\n"+
		"  nginx: {kind: nginx, allow: {addresses: [127.0.0.1]}}\n")
	_, exp := probeServer(t, "--config.file="+cfg)
	for _, tc := range []struct{ module, target, up string }{
		{"uwsgi", srv.URL + "/", "uwsgi_up"},
		{"nginx", srv.URL + "/stub_status", "nginx_up"},
	} {
		for i := range 3 {
			code, mfs, body := get(t, probeURL(exp.URL, tc.module, tc.target), "")
			if code != 200 {
				t.Fatalf("%s probe %d: %d %s", tc.module, i, code, body)
			}
			if v, _, err := only(mfs, tc.up); err != nil || v != 1 {
				t.Fatalf("%s probe %d: %s %v %v", tc.module, i, tc.up, v, err)
			}
			// The client closes its side when the probe ends; the server sees it at its next
			// read, so wait for that rather than a fixed time.
			t.Logf("%s probe %d: waiting for the server to see its connection closed", tc.module, i)
			WaitUntil(t, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(open) == 0
			})
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if opened != 6 {
		t.Errorf("%d connections opened, want one per probe (6)", opened)
	}
}

// The landing page lists the configuration file's /probe modules (name, kind, deadline) and
// follows a reload; a probe-only exporter says its targets come through /probe.
func TestLandingPageListsProbeModules(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "modules:\n"+
		"  web_nginx: {kind: nginx, timeout: 3s, allow: {addresses: [127.0.0.1]}}\n"+
		"  app_uwsgi: {kind: uwsgi, allow: {unix_sockets: [/run/uwsgi]}}\n")
	_, srv := probeServer(t, "--config.file="+cfg, "--scrape.timeout=7s")
	page := func() string {
		t.Helper()
		resp, err := http.Get(srv.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("landing page: %d %v", resp.StatusCode, err)
		}
		return string(b)
	}
	body := page()
	for _, want := range []string{
		`<p id="no-sources">No source is configured: this exporter reads targets through <a href="#probe">/probe</a>.</p>`,
		`<tr class="module" data-module="app_uwsgi" data-kind="uwsgi"><td><code>app_uwsgi</code></td><td>uwsgi</td><td>7s (unless the scraper announces one)</td></tr>`,
		`<tr class="module" data-module="web_nginx" data-kind="nginx"><td><code>web_nginx</code></td><td>nginx</td><td>3s (caps the scraper's)</td></tr>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %s:\n%s", want, body)
		}
	}
	if i, j := strings.Index(body, `data-module="app_uwsgi"`), strings.Index(body, `data-module="web_nginx"`); i < 0 || j < i {
		t.Errorf("modules not in name order")
	}

	if err := os.WriteFile(cfg, []byte("modules:\n  only_redis: {kind: multiproc_redis, allow: {addresses: [127.0.0.1]}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(srv.URL+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("reload answered %d", resp.StatusCode)
	}
	body = page()
	if !strings.Contains(body, `data-module="only_redis" data-kind="multiproc_redis"`) || strings.Contains(body, `data-module="web_nginx"`) {
		t.Errorf("after the reload the page shows:\n%s", body)
	}
}
