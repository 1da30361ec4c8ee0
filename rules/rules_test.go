// Package rules holds no Go code: its tests check the Prometheus rules in this folder with
// promtool, the real Prometheus tool, and check that every alert has unit tests.
package rules

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v2"
)

var ruleFiles = []string{"recording.yml", "alerts.yml"}

func promtool(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("promtool"); err != nil {
		t.Fatalf("promtool (Debian package prometheus) is required and is not installed (run `make test` as root to install it): %v", err)
	}
	out, err := exec.Command("promtool", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPromtoolCheckRules(t *testing.T) {
	out := promtool(t, append([]string{"check", "rules"}, ruleFiles...)...)
	if strings.Count(out, "SUCCESS") != len(ruleFiles) {
		t.Fatalf("promtool check rules:\n%s", out)
	}
}

func testFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("tests/*.test.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule test files under tests/ (%v)", err)
	}
	return files
}

func TestPromtoolTestRules(t *testing.T) {
	promtool(t, append([]string{"test", "rules"}, testFiles(t)...)...)
}

type ruleFile struct {
	Groups []struct {
		Name  string
		Rules []struct {
			Alert       string
			Record      string
			Expr        string
			For         string `yaml:"for"`
			Labels      map[string]string
			Annotations map[string]string
		}
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// alerts returns every alerting rule of alerts.yml by name.
func alerts(t *testing.T) map[string]map[string]string {
	t.Helper()
	var f ruleFile
	readYAML(t, "alerts.yml", &f)
	out := map[string]map[string]string{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s holds a recording rule %s: recording rules belong in recording.yml", g.Name, r.Record)
				continue
			}
			if _, dup := out[r.Alert]; dup {
				t.Errorf("alert %s is defined twice", r.Alert)
			}
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("alert %s: severity %q, want warning or critical", r.Alert, s)
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if r.Annotations[a] == "" {
					t.Errorf("alert %s has no %s annotation", r.Alert, a)
				}
			}
			out[r.Alert] = r.Annotations
		}
	}
	return out
}

// TestEveryAlertIsTested: every alert has a promtool test where it fires and one where it
// does not, and the tests name no alert that does not exist.
func TestEveryAlertIsTested(t *testing.T) {
	defined := alerts(t)
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, path := range testFiles(t) {
		var f struct {
			Tests []struct {
				AlertRuleTest []struct {
					Alertname string `yaml:"alertname"`
					ExpAlerts []any  `yaml:"exp_alerts"`
				} `yaml:"alert_rule_test"`
			} `yaml:"tests"`
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, &f); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, tc := range f.Tests {
			for _, a := range tc.AlertRuleTest {
				if _, ok := defined[a.Alertname]; !ok {
					t.Errorf("%s tests alert %s, which alerts.yml does not define", path, a.Alertname)
				}
				if len(a.ExpAlerts) > 0 {
					fires[a.Alertname] = true
				} else {
					silent[a.Alertname] = true
				}
			}
		}
	}
	var names []string
	for n := range defined {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !fires[n] {
			t.Errorf("alert %s has no promtool test in which it fires", n)
		}
		if !silent[n] {
			t.Errorf("alert %s has no promtool test in which it stays silent", n)
		}
	}
	if len(names) < 17 {
		t.Errorf("only %d alerts defined: %v", len(names), names)
	}
}

// TestRunbooks: every alert's runbook_url points at a section of docs/operations.md that
// exists (GitHub's anchor of a "### AlertName" heading is the lower-cased name).
func TestRunbooks(t *testing.T) {
	b, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#+ +(.+?)\s*$`).FindAllStringSubmatch(string(b), -1) {
		anchors[strings.ToLower(strings.ReplaceAll(m[1], " ", "-"))] = true
	}
	const prefix = "https://github.com/wsgi-exporter/wsgi_exporter/blob/main/docs/operations.md#"
	for name, ann := range alerts(t) {
		u := ann["runbook_url"]
		if !strings.HasPrefix(u, prefix) {
			t.Errorf("alert %s: runbook_url %q is not a section of docs/operations.md", name, u)
			continue
		}
		if a := strings.TrimPrefix(u, prefix); a != strings.ToLower(name) || !anchors[a] {
			t.Errorf("alert %s: runbook_url anchor %q: want a heading %q in docs/operations.md", name, a, name)
		}
	}
}
