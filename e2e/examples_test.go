package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v2"
)

// TestKubernetesPodsScrapeConfig checks examples/prometheus/kubernetes-pods.yml. Debian's
// Prometheus is built without Kubernetes service discovery (its promtool rejects
// kubernetes_sd_configs as an unknown field), so the test replaces the discovery by
// static_configs carrying the __meta_kubernetes_* labels Kubernetes discovery would give for
// three container ports: the application's and the exporter's of an annotated pod, and one of
// a pod without annotations. promtool check config must pass on that, and a real Prometheus
// running it must scrape exactly one target: the annotated pod's exporter, with the
// namespace, pod and app labels.
func TestKubernetesPodsScrapeConfig(t *testing.T) {
	RequireCommand(t, "promtool")
	RequireCommand(t, "prometheus")
	x := StartExporter(t)
	exporterPort := strings.TrimPrefix(x.URL, "http://127.0.0.1:")
	appPort := fmt.Sprint(FreePort(t))

	b, err := os.ReadFile("../examples/prometheus/kubernetes-pods.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg yaml.MapSlice
	if err := yaml.UnmarshalStrict(b, &cfg); err != nil {
		t.Fatal(err)
	}
	pod := func(port string, annotated bool, name string) yaml.MapSlice {
		labels := yaml.MapSlice{
			{Key: "__meta_kubernetes_namespace", Value: "shop"},
			{Key: "__meta_kubernetes_pod_name", Value: name},
			{Key: "__meta_kubernetes_pod_label_app_kubernetes_io_name", Value: "myapp-gunicorn"},
			{Key: "__meta_kubernetes_pod_container_port_number", Value: port},
		}
		if annotated {
			labels = append(labels,
				yaml.MapItem{Key: "__meta_kubernetes_pod_annotation_prometheus_io_scrape", Value: "true"},
				yaml.MapItem{Key: "__meta_kubernetes_pod_annotation_prometheus_io_port", Value: exporterPort},
				yaml.MapItem{Key: "__meta_kubernetes_pod_annotation_prometheus_io_path", Value: "/metrics"})
		}
		return yaml.MapSlice{{Key: "targets", Value: []string{"127.0.0.1:" + port}}, {Key: "labels", Value: labels}}
	}
	replaced := 0
	for i, item := range cfg {
		switch item.Key {
		case "rule_files":
			cfg[i].Value = []string{} // checked with the rules in examples/
		case "global":
			cfg[i].Value = yaml.MapSlice{{Key: "scrape_interval", Value: "1s"}, {Key: "scrape_timeout", Value: "1s"}}
		case "scrape_configs":
			for _, sc := range item.Value.([]any) {
				job := sc.(yaml.MapSlice)
				for j, field := range job {
					switch field.Key {
					case "kubernetes_sd_configs":
						if fmt.Sprint(field.Value) != "[[{role pod}]]" {
							t.Fatalf("kubernetes_sd_configs = %v, want [{role: pod}]", field.Value)
						}
						job[j] = yaml.MapItem{Key: "static_configs", Value: []yaml.MapSlice{
							pod(appPort, true, "myapp-gunicorn-7d4b9"),
							pod(exporterPort, true, "myapp-gunicorn-7d4b9"),
							pod(fmt.Sprint(FreePort(t)), false, "other-5c8f6"),
						}}
						replaced++
					case "scrape_timeout":
						job[j].Value = "1s"
					}
				}
			}
		}
	}
	if replaced != 1 {
		t.Fatalf("%d kubernetes_sd_configs replaced, want 1", replaced)
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(file, out, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("promtool", "check", "config", file).CombinedOutput(); err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}

	port := FreePort(t)
	prom := Start(t, dir, nil, "prometheus", "--config.file="+file, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	type target struct {
		Labels map[string]string
		Health string
	}
	var active []target
	WaitFor(t, 60*time.Second, "Prometheus to scrape the discovered target", func() bool {
		if prom.Exited() {
			t.Fatalf("prometheus exited:\n%s", prom.Output())
		}
		resp, err := http.Get(base + "/api/v1/targets")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var r struct {
			Data struct{ ActiveTargets []target }
		}
		if json.NewDecoder(resp.Body).Decode(&r) != nil {
			return false
		}
		active = r.Data.ActiveTargets
		return len(active) > 0 && active[0].Health == "up"
	})
	want := map[string]string{"job": "kubernetes-pods-wsgi", "instance": "127.0.0.1:" + exporterPort,
		"namespace": "shop", "pod": "myapp-gunicorn-7d4b9", "app": "myapp-gunicorn"}
	if len(active) != 1 || fmt.Sprint(active[0].Labels) != fmt.Sprint(want) {
		t.Fatalf("active targets %+v, want exactly one with labels %v", active, want)
	}
	if v, n, err := promQuery(base, `wsgi_exporter_build_info{pod="myapp-gunicorn-7d4b9"}`); err != nil || n != 1 || v != 1 {
		t.Fatalf("the exporter's series through the pod target: %v %d %v", v, n, err)
	}
}
