// Package e2e runs the built wsgi_exporter binary against real uWSGI, nginx and gunicorn
// processes started on loopback. A missing program fails the test: CI never skips these.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// DebianPython is the interpreter the Debian packages (flask, prometheus-client) belong to.
const DebianPython = "/usr/bin/python3"

var exporterBin string // built once by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wsgi-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	exporterBin = filepath.Join(dir, "wsgi_exporter")
	args := []string{"build", "-o", exporterBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "github.com/wsgi-exporter/wsgi_exporter/cmd/wsgi_exporter")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building wsgi_exporter:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// RequireCommand fails the test when a real component is not installed.
func RequireCommand(t testing.TB, path string) {
	t.Helper()
	if _, err := exec.LookPath(path); err != nil {
		t.Fatalf("%s is required for this end-to-end test and is not installed (run `make test` as root to install it): %v", path, err)
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and that it never
// returned before in this test run: the kernel may hand a port just closed out again, and two
// calls for one server (uWSGI's HTTP and stats sockets) once got the same port.
func FreePort(t testing.TB) int {
	t.Helper()
	givenMu.Lock()
	defer givenMu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !given[port] {
			given[port] = true
			return port
		}
	}
	t.Fatal("no new free port in 100 tries")
	return 0
}

var (
	givenMu sync.Mutex
	given   = map[int]bool{} // ports FreePort returned
)

// Process is a started program whose output is kept for failure messages.
type Process struct {
	Cmd  *exec.Cmd
	name string
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func (p *Process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.out.Len() < 1<<20 {
		p.out.Write(b)
	}
	return len(b), nil
}

// Output returns what the process printed so far.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) error { return p.Cmd.Process.Signal(sig) }

// Stop sends SIGTERM to the process group, then SIGKILL after a grace period, and waits.
func (p *Process) Stop() {
	if p.Exited() {
		return
	}
	_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// Start runs a program in its own process group; it is stopped when the test ends and its
// output is logged if the test failed.
func Start(t testing.TB, dir string, env []string, name string, args ...string) *Process {
	t.Helper()
	p := &Process{name: name, done: make(chan struct{})}
	p.Cmd = exec.Command(name, args...)
	p.Cmd.Dir = dir
	p.Cmd.Env = append(os.Environ(), env...)
	p.Cmd.Stdout, p.Cmd.Stderr = p, p
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { _ = p.Cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("output of %s %s:\n%s", name, strings.Join(args, " "), tail(p.Output(), 6000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// Exporter is a running wsgi_exporter binary.
type Exporter struct {
	*Process
	URL string // base URL, e.g. http://127.0.0.1:12345
}

// StartExporter runs the built binary with args on a free port and waits until it is healthy.
func StartExporter(t testing.TB, args ...string) *Exporter {
	t.Helper()
	return StartExporterBin(t, exporterBin, args...)
}

// StartExporterBin is StartExporter with the wsgi_exporter binary at bin (e.g. one taken
// from a release tarball or image).
func StartExporterBin(t testing.TB, bin string, args ...string) *Exporter {
	t.Helper()
	port := FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args = append([]string{"--web.listen-address=" + addr, "--log.level=debug"}, args...)
	p := Start(t, "", nil, bin, args...)
	x := &Exporter{Process: p, URL: "http://" + addr}
	WaitFor(t, 10*time.Second, "exporter healthy", func() bool {
		if p.Exited() {
			t.Fatalf("wsgi_exporter exited early:\n%s", p.Output())
		}
		resp, err := http.Get(x.URL + "/-/healthy")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return x
}

// Get fetches a path of the exporter and returns status and body.
func (x *Exporter) Get(t testing.TB, path string, header http.Header) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", x.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// Scrape fetches /metrics in the text format, asserts 200, and parses it.
func (x *Exporter) Scrape(t testing.TB) Metrics {
	t.Helper()
	code, body := x.Get(t, "/metrics", http.Header{"Accept": {"text/plain; version=0.0.4"}})
	if code != 200 {
		t.Fatalf("/metrics answered %d:\n%s", code, body)
	}
	return ParseMetrics(t, body)
}

// Metrics is a parsed exposition.
type Metrics struct {
	Families map[string]*dto.MetricFamily
	Raw      []byte
}

// ParseMetrics parses the text exposition format.
func ParseMetrics(t testing.TB, body []byte) Metrics {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parsing exposition: %v\n%s", err, body)
	}
	return Metrics{Families: fams, Raw: body}
}

func matches(m *dto.Metric, labels map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := labels[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(labels)
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	case m.Summary != nil:
		return float64(m.GetSummary().GetSampleCount())
	}
	return 0
}

// Get returns the value of the one series of name whose labels include labels. For
// histograms and summaries the value is the sample count. It fails the test when there is
// not exactly one such series.
func (ms Metrics) Get(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	v, n := ms.lookup(name, labels)
	if n != 1 {
		t.Fatalf("%s%v: want exactly 1 series, found %d\n%s", name, labels, n, ms.Raw)
	}
	return v
}

// Sum adds up every series of name whose labels include labels (0 when there is none).
func (ms Metrics) Sum(name string, labels map[string]string) float64 {
	v, _ := ms.lookup(name, labels)
	return v
}

// Count is the number of series of name whose labels include labels.
func (ms Metrics) Count(name string, labels map[string]string) int {
	_, n := ms.lookup(name, labels)
	return n
}

func (ms Metrics) lookup(name string, labels map[string]string) (float64, int) {
	f, ok := ms.Families[name]
	if !ok {
		return 0, 0
	}
	sum, n := 0.0, 0
	for _, m := range f.GetMetric() {
		if matches(m, labels) {
			sum += value(m)
			n++
		}
	}
	return sum, n
}

// WaitFor polls cond until it holds or the timeout passes, then fails the test.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// PromtoolCheck runs `promtool check metrics` on an exposition and fails on any finding.
func PromtoolCheck(t testing.TB, body []byte) {
	t.Helper()
	RequireCommand(t, "promtool")
	cmd := exec.Command("promtool", "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("promtool check metrics found problems (%v):\n%s", err, out)
	}
}

// HTTPGetN sends n GET requests to url one after another and fails unless each answers want.
func HTTPGetN(t testing.TB, url string, n, want int) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	for i := 0; i < n; i++ {
		resp, err := c.Get(url)
		if err != nil {
			t.Fatalf("request %d to %s: %v", i, url, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("request %d to %s: status %d, want %d", i, url, resp.StatusCode, want)
		}
	}
}
