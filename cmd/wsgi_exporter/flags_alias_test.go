package main

import (
	"slices"
	"testing"
)

// parseKinds parses args and returns the flags of the multiprocess kind and the common settings.
func parseKinds(t *testing.T, args ...string) (*multiprocFlags, common) {
	t.Helper()
	app, s := newApp()
	if _, err := app.Parse(args); err != nil {
		t.Fatal(err)
	}
	for _, k := range s.kinds {
		if m, ok := k.(*multiprocFlags); ok {
			return m, common{ProcFS: *s.procfs, ProcFSFlag: "--path.procfs"}
		}
	}
	t.Fatal("no multiproc flags")
	return nil, common{}
}

// The old flag names keep working, hidden: --gunicorn.multiproc-dir adds directories and
// --multiproc.proc-path overrides --path.procfs for the directories (empty: no liveness check).
func TestMultiprocFlagAliases(t *testing.T) {
	f, c := parseKinds(t, "--multiproc.dir=/a", "--gunicorn.multiproc-dir=/b")
	if got := f.allDirs(); !slices.Equal(got, []string{"/a", "/b"}) {
		t.Fatalf("dirs %q", got)
	}
	if got := f.options(c).ProcRoot; got != "/proc" {
		t.Fatalf("default procfs %q", got)
	}
	f, c = parseKinds(t, "--path.procfs=/host/proc", "--multiproc.dir=/a")
	if got := f.options(c).ProcRoot; got != "/host/proc" {
		t.Fatalf("--path.procfs: %q", got)
	}
	f, c = parseKinds(t, "--path.procfs=/host/proc", "--multiproc.proc-path=", "--multiproc.dir=/a")
	if got := f.options(c).ProcRoot; got != "" {
		t.Fatalf("--multiproc.proc-path= should turn the check off, got %q", got)
	}
	app, _ := newApp()
	for _, old := range []string{"gunicorn.multiproc-dir", "multiproc.proc-path", "gunicorn.procfs"} {
		if fl := app.GetFlag(old); fl == nil || !fl.Model().Hidden {
			t.Errorf("--%s should exist and be hidden", old)
		}
	}
}
