package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestInstallDepsStopsNothingAndChecksPrograms runs scripts/install-test-deps.sh with stand-in
// programs on PATH: nginx is there (as if from nginx-full: dpkg knows no nginx-light) and wrk
// is not. The script used to install nginx-light over it (it checked package names) and then
// stopped nginx and prometheus by name, ending every such process on the machine.
// Now it asks apt-get for wrk alone, with a policy-rc.d that forbids starting services during
// the install (removed after), and runs no program beyond those it needs: any other call is
// recorded instead of run (this test must not stop anything either).
func TestInstallDepsStopsNothingAndChecksPrograms(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	stub := func(name, body string) {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The real tools the script itself uses; none of them stops a process.
	for _, name := range []string{"awk", "grep", "sh", "chmod", "rm", "cat", "printf"} {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(p, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	// Present programs: everything but wrk. nginx has stub_status.
	for _, name := range []string{"prometheus", "promtool", "chromium", "podman", "redis-server", "ps", "fuser", "curl", "openssl", "prlimit"} {
		stub(name, "exit 0")
	}
	stub("nginx", `echo "configure arguments: --with-http_stub_status_module" >&2`)
	stub("id", `echo 0`)
	// dpkg knows every package but nginx-light and wrk: how the old script decided.
	stub("dpkg-query", `case "$*" in *nginx-light*|*wrk*) exit 1;; esac; echo "install ok installed"`)
	record := filepath.Join(dir, "calls.log")
	policy := filepath.Join(dir, "policy-rc.d")
	stub("apt-get", `echo "apt-get $*" >>`+record+`; if [ "$1" = install ]; then cat `+policy+` >>`+record+` 2>/dev/null || echo "no policy-rc.d" >>`+record+`; fi`)
	// PATH holds only the programs above: any other the script runs (a program that stops
	// processes or services among them) is not found, and bash's command_not_found_handle,
	// defined through BASH_ENV, records the call, so the exact list of calls below fails.
	bashEnv := filepath.Join(dir, "bash_env")
	if err := os.WriteFile(bashEnv, []byte(`command_not_found_handle() { echo "not found: $*" >>`+record+`; return 127; }`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command("bash", "../scripts/install-test-deps.sh")
	cmd.Env = []string{"PATH=" + bin, "POLICY_RC_D=" + policy, "HOME=" + dir, "BASH_ENV=" + bashEnv}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("install-test-deps.sh: %v\n%s", err, out)
	}
	got, err := os.ReadFile(record)
	if err != nil {
		t.Fatalf("apt-get was not called: %v\n%s", err, out)
	}
	want := "apt-get update -qq\napt-get install -y -qq --no-install-recommends wrk\n#!/bin/sh\n" +
		"# scripts/install-test-deps.sh (wsgi_exporter): no service starts during its apt-get install\nexit 101\n"
	if string(got) != want {
		t.Errorf("calls (and the policy-rc.d in force during the install):\n%s\nwant:\n%s", got, want)
	}
	if _, err := os.Stat(policy); !os.IsNotExist(err) {
		t.Errorf("policy-rc.d left behind (%v)", err)
	}
	if !strings.Contains(string(out), "test dependencies missing: wrk") {
		t.Errorf("output:\n%s", out)
	}
}
