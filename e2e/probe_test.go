package e2e

import (
	"crypto/md5"
	"encoding/binary"
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

	"go.yaml.in/yaml/v2"
)

// probePromAll runs an instant query and returns the value of every series by its instance label.
func probePromAll(base, q string) (map[string]float64, error) {
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string
		Data   struct {
			Result []struct {
				Metric map[string]string
				Value  [2]any
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %q: status %s", q, r.Status)
	}
	out := map[string]float64{}
	for _, s := range r.Data.Result {
		v, err := strconv.ParseFloat(fmt.Sprint(s.Value[1]), 64)
		if err != nil {
			return nil, err
		}
		out[s.Metric["instance"]] = v
	}
	return out, nil
}

// probePromTarget is an active target of a Prometheus server.
type probePromTarget struct {
	ScrapePool string            `json:"scrapePool"`
	ScrapeURL  string            `json:"scrapeUrl"`
	Labels     map[string]string `json:"labels"`
	Health     string            `json:"health"`
	LastError  string            `json:"lastError"`
}

func probePromTargets(base string) ([]probePromTarget, error) {
	resp, err := http.Get(base + "/api/v1/targets?state=active")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			ActiveTargets []probePromTarget `json:"activeTargets"`
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	return r.Data.ActiveTargets, nil
}

// probeStartPrometheus runs a real Prometheus on a configuration and returns its base URL.
func probeStartPrometheus(t *testing.T, dir, cfg string) (string, *Process) {
	t.Helper()
	RequireCommand(t, "prometheus")
	path := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	port := FreePort(t)
	prom := Start(t, dir, nil, "prometheus", "--config.file="+path, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port))
	return fmt.Sprintf("http://127.0.0.1:%d", port), prom
}

// probeSubst replaces each old string of an example by its new one; each must occur exactly
// once, so that a changed example cannot silently escape the test.
func probeSubst(t *testing.T, text string, pairs ...string) string {
	t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		if n := strings.Count(text, pairs[i]); n != 1 {
			t.Fatalf("the example holds %q %d times, want once", pairs[i], n)
		}
		text = strings.Replace(text, pairs[i], pairs[i+1], 1)
	}
	return text
}

// probeWriteTargets replaces a file_sd file atomically (Prometheus may read it at any time).
func probeWriteTargets(t *testing.T, path string, groups []map[string]any) {
	t.Helper()
	b, err := yaml.Marshal(groups)
	if err != nil {
		t.Fatal(err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestProbeFileSD: a real Prometheus runs examples/probe/prometheus-file_sd.yml over real
// uWSGI and nginx servers, all probed through one exporter's /probe, while the test edits the
// file_sd file (a target added, one removed). Every target's up (Prometheus' scrape of the
// probe) and <kind>_up (the probe's scrape of the target) is checked exactly, before and
// after the edit: a dead target is a successful probe with uwsgi_up 0; a target outside the
// allow-list is refused (403), so its scrape fails and it has no uwsgi_up.
func TestProbeFileSD(t *testing.T) {
	RequireCommand(t, "uwsgi")
	dir := t.TempDir()
	socks := filepath.Join(dir, "socks")
	if err := os.Mkdir(socks, 0o755); err != nil {
		t.Fatal(err)
	}
	tcpStats := func() string { return fmt.Sprintf("127.0.0.1:%d", FreePort(t)) }
	a1, a3 := tcpStats(), tcpStats()
	a2 := "unix://" + filepath.Join(socks, "u2.sock")
	u1 := uwsgiStart(t, "u1", a1, a1, "--stats", a1)
	u2 := uwsgiStart(t, "u2", a2, a2, "--stats", strings.TrimPrefix(a2, "unix://"))
	u3 := uwsgiStart(t, "u3", a3, a3, "--stats", a3)
	for _, u := range []*uwsgiInstance{u1, u2, u3} {
		u.waitReady(t)
	}
	n := nginxStart(t, nil)
	dead := tcpStats()          // allowed, nobody listens
	refused := "127.0.0.2:1717" // outside the allow-list

	cfg := filepath.Join(dir, "wsgi_exporter.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`modules:
  uwsgi:
    kind: uwsgi
    allow:
      addresses: ["127.0.0.1"]
      unix_sockets: [%s]
  nginx:
    kind: nginx
    allow:
      addresses: ["127.0.0.1"]
      unix_sockets: [%s]
`, socks, n.Dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	x := StartExporter(t, "--config.file="+cfg)

	example, err := os.ReadFile("../examples/probe/prometheus-file_sd.yml")
	if err != nil {
		t.Fatal(err)
	}
	targets := filepath.Join(dir, "targets")
	if err := os.Mkdir(targets, 0o755); err != nil {
		t.Fatal(err)
	}
	promCfg := probeSubst(t, string(example),
		"scrape_interval: 15s", "scrape_interval: 1s",
		"scrape_timeout: 10s", "scrape_timeout: 1s",
		"files: [wsgi_targets/*.yml]", "files: ["+filepath.Join(targets, "*.yml")+"]",
		"wsgi-exporter.example.com:10133", strings.TrimPrefix(x.URL, "http://"))
	nginxSock := "unix://" + n.Socket + "?path=/stub_status"
	file := filepath.Join(targets, "fleet.yml")
	group := func(module string, addrs ...string) map[string]any {
		g := map[string]any{"targets": addrs, "labels": map[string]string{"app": "shop"}}
		if module != "" {
			g["labels"].(map[string]string)["__param_module"] = module
		}
		return g
	}
	// uwsgi is the example's default module: the first group names none.
	probeWriteTargets(t, file, []map[string]any{
		group("", a1, a2, dead, refused),
		group("nginx", n.stubURI(), nginxSock),
	})
	base, prom := probeStartPrometheus(t, dir, promCfg)

	type want struct{ up, kindUp map[string]float64 }
	check := func(what string, w want) {
		t.Helper()
		var got want
		WaitFor(t, 60*time.Second, what, func() bool {
			if prom.Exited() {
				t.Fatalf("prometheus exited:\n%s", prom.Output())
			}
			up, err1 := probePromAll(base, `up{job="wsgi-probe"}`)
			ku, err2 := probePromAll(base, `uwsgi_up{job="wsgi-probe"} or nginx_up{job="wsgi-probe"}`)
			if err1 != nil || err2 != nil {
				return false
			}
			got = want{up, ku}
			return fmt.Sprint(got) == fmt.Sprint(w)
		})
		if fmt.Sprint(got) != fmt.Sprint(w) {
			t.Fatalf("%s:\n got %v\nwant %v", what, got, w)
		}
	}
	check("the first targets probed", want{
		up:     map[string]float64{a1: 1, a2: 1, dead: 1, refused: 0, n.stubURI(): 1, nginxSock: 1},
		kindUp: map[string]float64{a1: 1, a2: 1, dead: 0, n.stubURI(): 1, nginxSock: 1},
	})
	ts, err := probePromTargets(base)
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range ts {
		if tg.Labels["instance"] == refused && !strings.Contains(tg.LastError, "403") {
			t.Errorf("the refused target's scrape error: %q, want a 403", tg.LastError)
		}
		if tg.Labels["app"] != "shop" || tg.Labels["module"] == "" {
			t.Errorf("target labels %v", tg.Labels)
		}
	}

	// u3 added, u2 removed: Prometheus reads the file again, the exporter needs nothing.
	probeWriteTargets(t, file, []map[string]any{
		group("uwsgi", a1, a3, dead, refused),
		group("nginx", n.stubURI(), nginxSock),
	})
	check("after the edit", want{
		up:     map[string]float64{a1: 1, a3: 1, dead: 1, refused: 0, n.stubURI(): 1, nginxSock: 1},
		kindUp: map[string]float64{a1: 1, a3: 1, dead: 0, n.stubURI(): 1, nginxSock: 1},
	})

	// The probe's own metrics: every probe that ran is counted, the refusals by reason.
	m := x.Scrape(t)
	if v := m.Get(t, "wsgi_exporter_probe_refused_total", map[string]string{"module": "uwsgi", "reason": "address"}); v < 2 {
		t.Errorf("refused probes counted: %v", v)
	}
	if v := m.Get(t, "wsgi_exporter_probe_refused_total", map[string]string{"module": "nginx", "reason": "address"}); v != 0 {
		t.Errorf("nginx refusals: %v", v)
	}
}

// probeExampleConfig reads an example, renames its jobs (name-suffix) and replaces its service
// discovery by static_configs carrying the labels that discovery would give.
func probeExampleConfig(t *testing.T, name, suffix string, static []yaml.MapSlice) []yaml.MapSlice {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../examples/probe", name))
	if err != nil {
		t.Fatal(err)
	}
	var cfg yaml.MapSlice
	if err := yaml.UnmarshalStrict(b, &cfg); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var jobs []yaml.MapSlice
	for _, item := range cfg {
		if item.Key != "scrape_configs" {
			t.Fatalf("%s: unexpected top-level key %v", name, item.Key)
		}
		for _, j := range item.Value.([]any) {
			job := j.(yaml.MapSlice)
			replaced := 0
			for i, f := range job {
				switch f.Key {
				case "job_name":
					job[i].Value = fmt.Sprint(f.Value) + "-" + suffix
				case "kubernetes_sd_configs", "consul_sd_configs", "file_sd_configs":
					job[i] = yaml.MapItem{Key: "static_configs", Value: static}
					replaced++
				}
			}
			if replaced != 1 {
				t.Fatalf("%s: %d discovery blocks replaced, want 1", name, replaced)
			}
			jobs = append(jobs, job)
		}
	}
	return jobs
}

func probeStaticGroup(target string, labels ...string) yaml.MapSlice {
	var ls yaml.MapSlice
	for i := 0; i+1 < len(labels); i += 2 {
		ls = append(ls, yaml.MapItem{Key: labels[i], Value: labels[i+1]})
	}
	return yaml.MapSlice{{Key: "targets", Value: []string{target}}, {Key: "labels", Value: ls}}
}

// probeHashmod is Prometheus' hashmod relabelling of one value.
func probeHashmod(v string, modulus uint64) uint64 {
	h := md5.Sum([]byte(v))
	return binary.BigEndian.Uint64(h[8:]) % modulus
}

// TestProbeExamplesRelabelling checks the relabelling of every Prometheus example of
// examples/probe. Debian's Prometheus has no Kubernetes or Consul discovery, so each
// discovery block is replaced by static_configs carrying the labels the discovery would give;
// promtool check config must pass on the result, and a real Prometheus running it must derive
// exactly the probes the example promises: the /probe URL (module and target), the labels,
// the targets dropped, each target's shard.
func TestProbeExamplesRelabelling(t *testing.T) {
	RequireCommand(t, "promtool")
	pod := func(ip, port, phase string, ann ...string) yaml.MapSlice {
		labels := []string{
			"__meta_kubernetes_namespace", "shop",
			"__meta_kubernetes_pod_name", "pod-" + ip,
			"__meta_kubernetes_pod_ip", ip,
			"__meta_kubernetes_pod_phase", phase,
			"__meta_kubernetes_pod_container_port_number", port,
		}
		for i := 0; i+1 < len(ann); i += 2 {
			labels = append(labels, "__meta_kubernetes_pod_annotation_wsgi_exporter_io_"+ann[i], ann[i+1])
		}
		return probeStaticGroup(ip+":"+port, labels...)
	}
	consul := func(addr, service string, meta ...string) yaml.MapSlice {
		labels := []string{"__meta_consul_service", service, "__meta_consul_node", "node-1"}
		for i := 0; i+1 < len(meta); i += 2 {
			labels = append(labels, "__meta_consul_service_metadata_"+meta[i], meta[i+1])
		}
		return probeStaticGroup(addr, labels...)
	}
	var fleet []yaml.MapSlice
	var fleetAddrs []string
	for i := range 12 {
		a := fmt.Sprintf("10.3.0.%d:1717", i+1)
		fleetAddrs = append(fleetAddrs, a)
		fleet = append(fleet, probeStaticGroup(a, "app", "shop"))
	}
	var jobs []yaml.MapSlice
	jobs = append(jobs, probeExampleConfig(t, "prometheus-kubernetes.yml", "k8s", []yaml.MapSlice{
		// an annotated uWSGI pod, found once per container port: one probe
		pod("10.1.0.5", "8000", "Running", "module", "uwsgi", "port", "1717"),
		pod("10.1.0.5", "9000", "Running", "module", "uwsgi", "port", "1717"),
		pod("10.1.0.6", "80", "Running", "module", "nginx", "port", "8080", "path", "/stub_status"),
		pod("10.1.0.7", "8000", "Running"),                                    // not annotated
		pod("10.1.0.8", "8000", "Pending", "module", "uwsgi", "port", "1717"), // not running
	})...)
	jobs = append(jobs, probeExampleConfig(t, "prometheus-consul.yml", "consul", []yaml.MapSlice{
		consul("10.2.0.5:1717", "shop-uwsgi", "wsgi_module", "uwsgi"),
		consul("10.2.0.6:8080", "shop-nginx", "wsgi_module", "nginx", "wsgi_path", "/stub_status"),
		consul("10.2.0.7:8000", "shop-web"),
	})...)
	// The file_sd example runs on its own targets file, whose groups static_configs takes as
	// they are; a group without __param_module gets the default module.
	shop, err := os.ReadFile("../examples/probe/wsgi_targets/shop.yml")
	if err != nil {
		t.Fatal(err)
	}
	var shopGroups []yaml.MapSlice
	if err := yaml.UnmarshalStrict(shop, &shopGroups); err != nil {
		t.Fatalf("wsgi_targets/shop.yml: %v", err)
	}
	jobs = append(jobs, probeExampleConfig(t, "prometheus-file_sd.yml", "file", append(shopGroups,
		probeStaticGroup("10.0.1.7:1717", "app", "cart"),
	))...)
	jobs = append(jobs, probeExampleConfig(t, "prometheus-shard-servers.yml", "servers", fleet)...)
	jobs = append(jobs, probeExampleConfig(t, "prometheus-shard-exporters.yml", "exporters", fleet)...)
	out, err := yaml.Marshal(yaml.MapSlice{
		{Key: "global", Value: yaml.MapSlice{{Key: "scrape_interval", Value: "1m"}}},
		{Key: "scrape_configs", Value: jobs},
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "check.yml"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("promtool", "check", "config", filepath.Join(dir, "check.yml")).CombinedOutput(); err != nil {
		t.Fatalf("promtool check config: %v\n%s\n%s", err, b, out)
	}
	base, prom := probeStartPrometheus(t, dir, string(out))

	probe := func(exporter, module, target string) string {
		return "http://" + exporter + "/probe?" + url.Values{"module": {module}, "target": {target}}.Encode()
	}
	want := map[string][]string{
		"wsgi-probe-pods-k8s": {
			probe("wsgi-exporter.monitoring.svc:10133", "uwsgi", "10.1.0.5:1717") + " instance=10.1.0.5:1717 module=uwsgi namespace=shop pod=pod-10.1.0.5",
			probe("wsgi-exporter.monitoring.svc:10133", "nginx", "http://10.1.0.6:8080/stub_status") + " instance=http://10.1.0.6:8080/stub_status module=nginx namespace=shop pod=pod-10.1.0.6",
		},
		"wsgi-probe-consul-consul": {
			probe("wsgi-exporter.service.consul:10133", "uwsgi", "10.2.0.5:1717") + " instance=10.2.0.5:1717 module=uwsgi node=node-1 service=shop-uwsgi",
			probe("wsgi-exporter.service.consul:10133", "nginx", "http://10.2.0.6:8080/stub_status") + " instance=http://10.2.0.6:8080/stub_status module=nginx node=node-1 service=shop-nginx",
		},
		"wsgi-probe-file": {
			probe("wsgi-exporter.example.com:10133", "uwsgi", "10.0.1.5:1717") + " app=shop instance=10.0.1.5:1717 module=uwsgi",
			probe("wsgi-exporter.example.com:10133", "uwsgi", "10.0.1.6:1717") + " app=shop instance=10.0.1.6:1717 module=uwsgi",
			probe("wsgi-exporter.example.com:10133", "nginx", "http://10.0.1.5:8080/stub_status") + " app=shop instance=http://10.0.1.5:8080/stub_status module=nginx",
			probe("wsgi-exporter.example.com:10133", "uwsgi", "10.0.1.7:1717") + " app=cart instance=10.0.1.7:1717 module=uwsgi",
		},
	}
	for _, a := range fleetAddrs {
		if probeHashmod(a, 3) == 0 {
			want["wsgi-probe-servers"] = append(want["wsgi-probe-servers"], probe("wsgi-exporter.example.com:10133", "uwsgi", a)+" app=shop instance="+a+" module=uwsgi")
		}
		replica := fmt.Sprintf("wsgi-exporter-%d.example.com:10133", probeHashmod(a, 2))
		want["wsgi-probe-exporters"] = append(want["wsgi-probe-exporters"], probe(replica, "uwsgi", a)+" app=shop instance="+a+" module=uwsgi")
	}
	for _, w := range want {
		sort.Strings(w)
	}
	if n := len(want["wsgi-probe-servers"]); n == 0 || n == 12 {
		t.Fatalf("the shard holds %d of 12 targets: the test's addresses do not exercise sharding", n)
	}
	var got map[string][]string
	WaitFor(t, 30*time.Second, "Prometheus to derive the targets", func() bool {
		if prom.Exited() {
			t.Fatalf("prometheus exited:\n%s", prom.Output())
		}
		ts, err := probePromTargets(base)
		if err != nil {
			return false
		}
		got = map[string][]string{}
		for _, tg := range ts {
			var ls []string
			for k, v := range tg.Labels {
				if k != "job" {
					ls = append(ls, k+"="+v)
				}
			}
			sort.Strings(ls)
			got[tg.ScrapePool] = append(got[tg.ScrapePool], tg.ScrapeURL+" "+strings.Join(ls, " "))
		}
		for _, g := range got {
			sort.Strings(g)
		}
		return fmt.Sprint(got) == fmt.Sprint(want)
	})
	if fmt.Sprint(got) != fmt.Sprint(want) {
		for pool := range want {
			if fmt.Sprint(got[pool]) != fmt.Sprint(want[pool]) {
				t.Errorf("%s:\n got %v\nwant %v", pool, got[pool], want[pool])
			}
		}
	}
}

// TestProbeExampleExporterConfig: the exporter's example configuration passes --config.check.
func TestProbeExampleExporterConfig(t *testing.T) {
	out, err := exec.Command(exporterBin, "--config.check", "--config.file=../examples/probe/wsgi_exporter.yml").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "configuration valid (../examples/probe/wsgi_exporter.yml): 1 sources (0 from flags), 4 probe modules") {
		t.Fatalf("--config.check: %v\n%s", err, out)
	}
}
