// Package examples holds no Go code: its tests check the deployment examples in this folder.
// Every YAML file parses; the Prometheus configuration passes `promtool check config` (the
// pod-annotation one is checked in e2e/examples_test.go, see there); the Kubernetes manifests
// agree with themselves (volumes, paths, ports, labels) and the exporter starts with the
// flags they give it; the systemd units pass `systemd-analyze verify` and the settings file
// names real flags.
package examples

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v2"
)

var exporterBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wsgi-examples-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	exporterBin = filepath.Join(dir, "wsgi_exporter")
	build := exec.Command("go", "build", "-o", exporterBin, "github.com/wsgi-exporter/wsgi_exporter/cmd/wsgi_exporter")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building wsgi_exporter:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func requireCommand(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s is required and is not installed (run `make test` as root to install it): %v", name, err)
	}
}

// documents reads every YAML document of a file.
func documents(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.SetStrict(true)
	var out []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", path, len(out)+1, err)
		}
		if doc != nil {
			out = append(out, normalize(doc).(map[string]any))
		}
	}
	return out
}

// normalize turns yaml.v2's map[interface{}]interface{} into map[string]any, recursively.
func normalize(v any) any {
	switch x := v.(type) {
	case map[any]any:
		m := map[string]any{}
		for k, v := range x {
			m[fmt.Sprint(k)] = normalize(v)
		}
		return m
	case map[string]any:
		for k, v := range x {
			x[k] = normalize(v)
		}
		return x
	case []any:
		for i := range x {
			x[i] = normalize(x[i])
		}
		return x
	}
	return v
}

func TestYAMLParses(t *testing.T) {
	var n int
	err := filepath.Walk(".", func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.IsDir() && path == "probe" {
			return filepath.SkipDir // /probe's examples: checked by e2e/probe_test.go
		}
		if strings.HasSuffix(path, ".yml") || strings.HasSuffix(path, ".yaml") {
			if len(documents(t, path)) == 0 {
				t.Errorf("%s holds no YAML document", path)
			}
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 5 {
		t.Errorf("%d YAML files, want 5 (update this test when adding one)", n)
	}
}

// TestPromtoolCheckConfig: the static scrape configuration, with the project's rule files
// beside it as its comment says, passes promtool (which checks the rules too).
func TestPromtoolCheckConfig(t *testing.T) {
	requireCommand(t, "promtool")
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "wsgi_exporter"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"recording.yml", "alerts.yml"} {
		copyFile(t, filepath.Join("..", "rules", f), filepath.Join(dir, "wsgi_exporter", f))
	}
	copyFile(t, "prometheus/static.yml", filepath.Join(dir, "static.yml"))
	out, err := exec.Command("promtool", "check", "config", filepath.Join(dir, "static.yml")).CombinedOutput()
	if err != nil || bytes.Count(out, []byte("SUCCESS")) != 4 || bytes.Contains(out, []byte("WARNING")) {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// get walks a decoded YAML value by keys (string) and indexes (int).
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			s, ok := v.([]any)
			if !ok || k >= len(s) {
				return nil
			}
			v = s[k]
		}
	}
	return v
}

func list(v any) []any { s, _ := v.([]any); return s }

func str(v any) string { s, _ := v.(string); return s }

// exporterPaths are the exporter flags that name a path the application writes.
var exporterPaths = regexp.MustCompile(`^--(uwsgi\.stats-uri=unix://|multiproc\.dir=|gunicorn\.pidfile=)(/.+)$`)

// TestKubernetesManifests checks each Deployment: selector and pod labels agree, every mount
// names a volume, every path the exporter reads is on a volume the application container
// mounts at the same place and named in the application's configuration, the exporter's
// port is named metrics (the PodMonitor's and the annotation's), and it starts with its args.
func TestKubernetesManifests(t *testing.T) {
	files, _ := filepath.Glob("kubernetes/*.yaml")
	var podLabels []map[string]any
	var monitors []map[string]any
	deployments := 0
	for _, f := range files {
		docs := documents(t, f)
		config := map[string]string{} // ConfigMap name -> its data, concatenated
		for _, d := range docs {
			if str(d["apiVersion"]) == "" || str(d["kind"]) == "" || str(get(d, "metadata", "name")) == "" {
				t.Errorf("%s: a document without apiVersion, kind or metadata.name: %v", f, d)
			}
			if d["kind"] == "ConfigMap" {
				for _, v := range get(d, "data").(map[string]any) {
					config[str(get(d, "metadata", "name"))] += withoutComments(str(v))
				}
			}
			if d["kind"] == "PodMonitor" {
				monitors = append(monitors, d)
			}
		}
		for _, d := range docs {
			if d["kind"] != "Deployment" {
				continue
			}
			deployments++
			name := str(get(d, "metadata", "name"))
			labels, _ := get(d, "spec", "template", "metadata", "labels").(map[string]any)
			podLabels = append(podLabels, labels)
			for k, v := range get(d, "spec", "selector", "matchLabels").(map[string]any) {
				if labels[k] != v {
					t.Errorf("%s: selector %s=%v does not match the pod labels %v", name, k, v, labels)
				}
			}
			if get(d, "spec", "template", "metadata", "annotations", "prometheus.io/port") != "10133" {
				t.Errorf("%s: pod annotation prometheus.io/port is not the exporter's 10133", name)
			}
			spec := get(d, "spec", "template", "spec")
			volumes := map[string]any{}
			for _, v := range list(get(spec, "volumes")) {
				volumes[str(get(v, "name"))] = v
			}
			appConfig := ""
			for _, v := range volumes {
				if cm := str(get(v, "configMap", "name")); cm != "" {
					if _, ok := config[cm]; !ok {
						t.Errorf("%s: volume of ConfigMap %s, which %s does not define", name, cm, f)
					}
					appConfig += config[cm]
				}
			}
			mounts := map[string]map[string]string{} // container -> mountPath -> volume
			var exporterArgs []string
			for _, c := range list(get(spec, "containers")) {
				cn := str(get(c, "name"))
				mounts[cn] = map[string]string{}
				for _, m := range list(get(c, "volumeMounts")) {
					vol := str(get(m, "name"))
					if _, ok := volumes[vol]; !ok {
						t.Errorf("%s: container %s mounts %s, which is no volume", name, cn, vol)
					}
					mounts[cn][str(get(m, "mountPath"))] = vol
				}
				if cn == "app" {
					appConfig += fmt.Sprint(get(c, "command"), get(c, "args"), get(c, "env"))
				}
				if cn == "wsgi-exporter" {
					for _, a := range list(get(c, "args")) {
						exporterArgs = append(exporterArgs, str(a))
					}
					if get(c, "ports", 0, "name") != "metrics" || get(c, "ports", 0, "containerPort") != 10133 {
						t.Errorf("%s: the exporter's port is not metrics/10133: %v", name, get(c, "ports"))
					}
				}
			}
			for _, a := range exporterArgs {
				m := exporterPaths.FindStringSubmatch(a)
				if m == nil {
					continue
				}
				path := m[2]
				dir, vol := mountOf(mounts["wsgi-exporter"], path)
				if vol == "" {
					t.Errorf("%s: the exporter reads %s, on none of its volumes", name, path)
					continue
				}
				if mounts["app"][dir] != vol {
					t.Errorf("%s: the exporter reads %s on volume %s at %s; the app container does not mount it there", name, path, vol, dir)
				}
				if !strings.Contains(appConfig, path) {
					t.Errorf("%s: the exporter reads %s, which the application's configuration never names", name, path)
				}
			}
			startExporter(t, name, exporterArgs, nil)
		}
	}
	if deployments != 2 || len(monitors) != 1 {
		t.Fatalf("%d Deployments and %d PodMonitors, want 2 and 1", deployments, len(monitors))
	}
	pm := monitors[0]
	if pm["apiVersion"] != "monitoring.coreos.com/v1" || get(pm, "spec", "podMetricsEndpoints", 0, "port") != "metrics" {
		t.Errorf("PodMonitor: want monitoring.coreos.com/v1 scraping port metrics: %v", pm)
	}
	for _, labels := range podLabels {
		for k, v := range get(pm, "spec", "selector", "matchLabels").(map[string]any) {
			if labels[k] != v {
				t.Errorf("the PodMonitor's selector %s=%v does not select pods labelled %v", k, v, labels)
			}
		}
	}
}

// withoutComments drops the comment lines (# or ;) of a configuration file, which name the
// exporter's flags and paths too.
func withoutComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if t := strings.TrimSpace(l); !strings.HasPrefix(t, "#") && !strings.HasPrefix(t, ";") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// mountOf finds the mount that holds path: its mountPath and volume.
func mountOf(mounts map[string]string, path string) (string, string) {
	best, vol := "", ""
	for dir, v := range mounts {
		if (path == dir || strings.HasPrefix(path, dir+"/")) && len(dir) > len(best) {
			best, vol = dir, v
		}
	}
	return best, vol
}

// startExporter runs the built exporter with args (and env) on a free loopback port until it
// logs "Listening on": the flags exist and their values parse. Then it is stopped.
func startExporter(t *testing.T, what string, args, env []string) {
	t.Helper()
	cmd := exec.Command(exporterBin, append(args, "--web.listen-address=127.0.0.1:0")...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		s := bufio.NewScanner(stderr)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	var log []string
	timeout := time.After(20 * time.Second)
	for ok := false; !ok; {
		select {
		case l, open := <-lines:
			if !open {
				_ = cmd.Wait()
				t.Fatalf("%s: the exporter exited (%v) with these flags:\n%s", what, cmd.ProcessState, strings.Join(log, "\n"))
			}
			log = append(log, l)
			ok = strings.Contains(l, `msg="Listening on"`)
		case <-timeout:
			t.Fatalf("%s: the exporter did not start within 20 s:\n%s", what, strings.Join(log, "\n"))
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	go func() {
		for range lines {
		}
	}()
	_ = cmd.Wait()
}

// TestSystemdUnits runs systemd-analyze verify on the units (ExecStart pointed at the built
// binary, which must exist), and starts the exporter with the settings file's variables.
func TestSystemdUnits(t *testing.T) {
	requireCommand(t, "systemd-analyze")
	dir := t.TempDir()
	for _, f := range []string{"wsgi_exporter.service", "wsgi_exporter.socket"} {
		b, err := os.ReadFile(filepath.Join("systemd", f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "wsgi_exporter.service" {
			if !bytes.Contains(b, []byte("ExecStart=/usr/local/bin/wsgi_exporter ")) {
				t.Fatal("wsgi_exporter.service: ExecStart is not /usr/local/bin/wsgi_exporter")
			}
			b = bytes.ReplaceAll(b, []byte("/usr/local/bin/wsgi_exporter"), []byte(exporterBin))
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("systemd-analyze", "verify", filepath.Join(dir, "wsgi_exporter.service"), filepath.Join(dir, "wsgi_exporter.socket"))
	out, err := cmd.CombinedOutput()
	// verify exits 0 on unknown keys and bad values, and only writes them: any line about
	// our units is a failure.
	var findings []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, dir) || strings.Contains(l, "wsgi_exporter") {
			findings = append(findings, l)
		}
	}
	if err != nil || len(findings) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}

	b, err := os.ReadFile("systemd/wsgi_exporter.default")
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if !strings.HasPrefix(l, "WSGI_EXPORTER_") || !strings.Contains(l, "=") {
			t.Fatalf("wsgi_exporter.default: %q is not a WSGI_EXPORTER_* variable", l)
		}
		env = append(env, l)
	}
	help, _ := exec.Command(exporterBin, "--help").CombinedOutput()
	for _, e := range env {
		name := e[:strings.IndexByte(e, '=')]
		if !bytes.Contains(help, []byte("($"+name+")")) {
			t.Errorf("wsgi_exporter.default sets %s, which no flag reads (see --help)", name)
		}
	}
	startExporter(t, "wsgi_exporter.default", nil, env)
}
