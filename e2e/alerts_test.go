package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// promAlert is an alert as Prometheus' /api/v1/alerts lists it.
type promAlert struct {
	Labels      map[string]string
	Annotations map[string]string
	State       string
}

func promAlerts(t *testing.T, base string) []promAlert {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/alerts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Status string
		Data   struct{ Alerts []promAlert }
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Status != "success" {
		t.Fatalf("/api/v1/alerts: %v %s", err, r.Status)
	}
	return r.Data.Alerts
}

// waitFiring waits until the alert with these labels fires and returns it.
func waitFiring(t *testing.T, d *demoStack, labels map[string]string) promAlert {
	t.Helper()
	var last []promAlert
	deadline := time.Now().Add(60 * time.Second)
	for {
		last = promAlerts(t, d.Prometheus)
		for _, a := range last {
			if a.State == "firing" && matchLabels(a.Labels, labels) {
				return a
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("alert %v never fired; alerts: %+v%s", labels, last, d.logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func matchLabels(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// shortRules copies rules/ with every `for:` shortened to 2s, so that the alerts fire within
// seconds (the durations themselves are covered by the promtool unit tests).
func shortRules(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	forLine := regexp.MustCompile(`(?m)^(\s+)for: \S+$`)
	for _, f := range []string{"recording.yml", "alerts.yml"} {
		b, err := os.ReadFile(filepath.Join("..", "rules", f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "alerts.yml" && len(forLine.FindAll(b, -1)) < 5 {
			t.Fatalf("alerts.yml: no `for:` lines found to shorten")
		}
		b = forLine.ReplaceAll(b, []byte("${1}for: 2s"))
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestAlertsFireOnRealStack loads the project's rules (for: shortened) into the demo's real
// Prometheus, evaluating every second, and sees UWSGIAllWorkersBusy fire while slow requests
// hold all 4 uWSGI workers, then WSGISourceDown fire for nginx once nginx is stopped.
func TestAlertsFireOnRealStack(t *testing.T) {
	d := newDemoStack(t, "DEMO_TRAFFIC_RATE=0", "DEMO_RULES_DIR="+shortRules(t))
	d.start(t)
	d.waitAllSourcesUp(t)
	for _, a := range promAlerts(t, d.Prometheus) {
		if a.Labels["alertname"] == "UWSGIAllWorkersBusy" || a.Labels["alertname"] == "WSGISourceDown" {
			t.Fatalf("%s is active before anything happened: %+v", a.Labels["alertname"], a)
		}
	}

	// 6 requests of 12 s through nginx: 4 workers busy, 2 requests in the listen queue.
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 30 * time.Second}
			if resp, err := c.Get(d.Nginx + "/slow?s=12"); err == nil {
				resp.Body.Close()
			}
		}()
	}
	busy := waitFiring(t, d, map[string]string{"alertname": "UWSGIAllWorkersBusy", "stats_uri": d.UWSGIStats, "severity": "critical"})
	if want := "all uWSGI workers of " + d.UWSGIStats + " are busy"; busy.Annotations["summary"] != want {
		t.Errorf("summary %q, want %q", busy.Annotations["summary"], want)
	}
	wg.Wait()

	// Stop nginx (the process group the demo recorded): its stub_status source goes down.
	pid := d.pids(t)["nginx"]
	if pid == 0 {
		t.Fatal("no nginx pid recorded")
	}
	if err := syscall.Kill(-pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	source := d.Nginx + "/stub_status"
	down := waitFiring(t, d, map[string]string{"alertname": "WSGISourceDown", "kind": "nginx", "source": source})
	if want := fmt.Sprintf("nginx source %s is down", source); down.Annotations["summary"] != want {
		t.Errorf("summary %q, want %q", down.Annotations["summary"], want)
	}
	// Only nginx is down.
	for _, a := range promAlerts(t, d.Prometheus) {
		if a.Labels["alertname"] == "WSGISourceDown" && a.Labels["kind"] != "nginx" {
			t.Errorf("%+v: only nginx was stopped", a)
		}
		if a.Labels["alertname"] == "WSGIExporterDown" {
			t.Errorf("%+v: the exporter runs", a)
		}
	}
}
