package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// demoStack is the stack scripts/demo.sh starts (nginx, uWSGI, gunicorn, the exporter,
// Prometheus with rules/*.yml, traffic), on free ports under a test directory. The tests of
// the demo, the dashboards and the alerts use it, so they check the demo's configuration too.
type demoStack struct {
	State      string // DEMO_STATE_DIR
	Exporter   string // base URLs
	Prometheus string
	Nginx      string // the app through nginx and uWSGI
	Gunicorn   string // the app through gunicorn
	UWSGIStats string // the exporter's --uwsgi.stats-uri
	Statsd     string // the exporter's --gunicorn.statsd-listen-address
	Env        []string
}

// demoScript is scripts/demo.sh of this checkout.
func demoScript(t testing.TB) string {
	t.Helper()
	p, err := filepath.Abs("../scripts/demo.sh")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// newDemoStack picks free addresses and a state directory; settings are extra DEMO_*
// variables (e.g. DEMO_TRAFFIC_RATE=0). Nothing runs yet.
func newDemoStack(t *testing.T, settings ...string) *demoStack {
	t.Helper()
	for _, c := range []string{"uwsgi", "nginx", "/usr/bin/gunicorn", "prometheus", "curl", "setsid", "ps"} {
		RequireCommand(t, c)
	}
	if _, err := os.Stat("/usr/lib/uwsgi/plugins/python3_plugin.so"); err != nil {
		t.Fatalf("the uWSGI python3 plugin is required (Debian package uwsgi-plugin-python3): %v", err)
	}
	// nginx's workers run as nobody: they must reach their temporary directory.
	base := t.TempDir()
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	addr := func() string { return fmt.Sprintf("127.0.0.1:%d", FreePort(t)) }
	d := &demoStack{State: filepath.Join(base, "demo")}
	exporter, prom, nginx, uwsgiSock, gunicorn := addr(), addr(), addr(), addr(), addr()
	d.Statsd = fmt.Sprintf("127.0.0.1:%d", gunicornFreeUDPPort(t))
	d.Exporter, d.Prometheus = "http://"+exporter, "http://"+prom
	d.Nginx, d.Gunicorn = "http://"+nginx, "http://"+gunicorn
	d.UWSGIStats = "unix://" + filepath.Join(d.State, "run", "uwsgi-stats.sock")
	d.Env = append([]string{
		"DEMO_STATE_DIR=" + d.State,
		"DEMO_EXPORTER=" + exporterBin,
		"DEMO_SKIP_DEPS=1", // a missing program fails the test above instead
		"DEMO_EXPORTER_LISTEN=" + exporter,
		"DEMO_PROMETHEUS_LISTEN=" + prom,
		"DEMO_NGINX_LISTEN=" + nginx,
		"DEMO_UWSGI_SOCKET=" + uwsgiSock,
		"DEMO_GUNICORN_BIND=" + gunicorn,
		"DEMO_STATSD=" + d.Statsd,
		"DEMO_SCRAPE_INTERVAL=1s",
		"DEMO_EVAL_INTERVAL=1s",
	}, settings...)
	// Whatever happens, stop what the demo started (by the pids it recorded).
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(d.logs())
		}
		d.script(t, "stop")
	})
	return d
}

// script runs scripts/demo.sh with the stack's settings and returns its output.
func (d *demoStack) script(t *testing.T, arg string) string {
	t.Helper()
	cmd := exec.Command(demoScript(t), arg)
	cmd.Env = append(os.Environ(), d.Env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/demo.sh %s: %v\n%s%s", arg, err, out, d.logs())
	}
	return string(out)
}

// start runs `scripts/demo.sh start`, which returns once everything answers; the stack is
// stopped with `scripts/demo.sh stop` when the test ends.
func (d *demoStack) start(t *testing.T) {
	t.Helper()
	d.script(t, "start")
}

// logs returns the tail of every component's log, for failure messages.
func (d *demoStack) logs() string {
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(d.State, "log", "*.log"))
	for _, f := range files {
		out, _ := os.ReadFile(f)
		fmt.Fprintf(&b, "\n--- %s:\n%s", filepath.Base(f), tail(string(out), 3000))
	}
	return b.String()
}

// pids reads the pids the script recorded, by component.
func (d *demoStack) pids(t *testing.T) map[string]int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(d.State, "pids", "*"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.Fields(string(b))[0])
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = pid
	}
	return out
}

// promSample is one element of an instant vector.
type promSample struct {
	Metric map[string]string
	Value  float64
}

// promVector runs an instant query (at time at, or now when at is zero) and returns the
// vector it gives.
func promVector(base, q string, at time.Time) ([]promSample, error) {
	v := url.Values{"query": {q}}
	if !at.IsZero() {
		v.Set("time", strconv.FormatFloat(float64(at.UnixNano())/1e9, 'f', 3, 64))
	}
	resp, err := http.Get(base + "/api/v1/query?" + v.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status    string
		Error     string
		ErrorType string
		Data      struct {
			ResultType string
			Result     []struct {
				Metric map[string]string
				Value  [2]any
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %q: %s: %s", q, r.ErrorType, r.Error)
	}
	if r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("query %q: result type %s, want vector", q, r.Data.ResultType)
	}
	out := make([]promSample, 0, len(r.Data.Result))
	for _, s := range r.Data.Result {
		str, _ := s.Value[1].(string)
		f, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("query %q: value %q: %v", q, str, err)
		}
		out = append(out, promSample{Metric: s.Metric, Value: f})
	}
	sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i].Metric) < fmt.Sprint(out[j].Metric) })
	return out, nil
}

// waitAllSourcesUp waits until Prometheus holds wsgi_exporter:source_up = 1 for every one of
// the demo's six sources: uWSGI, nginx, two multiprocess directories, gunicorn /proc and
// statsd.
func (d *demoStack) waitAllSourcesUp(t *testing.T) {
	t.Helper()
	var last []promSample
	deadline := time.Now().Add(90 * time.Second)
	for {
		v, err := promVector(d.Prometheus, "wsgi_exporter:source_up", time.Time{})
		if err == nil {
			last = v
			kinds := map[string]int{}
			for _, s := range v {
				if s.Value == 1 {
					kinds[s.Metric["kind"]]++
				}
			}
			if len(v) == 6 && kinds["uwsgi"] == 1 && kinds["nginx"] == 1 && kinds["multiproc"] == 2 &&
				kinds["gunicorn"] == 1 && kinds["gunicorn_statsd"] == 1 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus never had every source of the demo up (last: %v, %v)%s", last, err, d.logs())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitScrapedAfter waits until Prometheus has scraped the exporter successfully after now (a
// scrape that began at least a second later), so that what happened before now is in its
// latest samples. A scrape that failed (its 1 s timeout passes on a loaded machine) does not
// count: its samples are not stored.
func (d *demoStack) waitScrapedAfter(t *testing.T) {
	t.Helper()
	start := time.Now()
	WaitFor(t, 60*time.Second, "a successful scrape of the exporter", func() bool {
		s, err := promVector(d.Prometheus, `timestamp(up{job="wsgi"} == 1)`, time.Time{})
		return err == nil && len(s) == 1 && s[0].Value > float64(start.Add(time.Second).Unix())
	})
}
