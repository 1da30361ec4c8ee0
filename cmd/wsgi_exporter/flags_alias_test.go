package main

import (
	"slices"
	"testing"

	"github.com/wsgi-exporter/wsgi_exporter/multiproc"
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

// TestMultiprocLimitDefaults: the flags' defaults are the limits file and probe sources get;
// a probe's directory is neither mapped nor folded (its source serves one read).
func TestMultiprocLimitDefaults(t *testing.T) {
	f, c := parseKinds(t, "--multiproc.dir=/a")
	o := f.options(c)
	if o.MaxFiles != multiproc.DefaultMaxFiles || o.MaxEntries != multiproc.DefaultMaxEntries || o.MaxSeries != multiproc.DefaultMaxSeries ||
		o.MaxKeyLength != multiproc.DefaultMaxKeyLength || o.MaxKeyBytes != multiproc.DefaultMaxKeyBytes || o.MaxBytes != defaultMultiprocMaxBytes ||
		o.NoStore || o.NoMmap || o.RecheckInterval != multiproc.DefaultRecheckInterval || o.ProcRoot != "/proc" {
		t.Fatalf("flag defaults %+v", o)
	}
	fo := fileMultiprocOptions(nil, buildEnv{ProcFS: "/proc"})
	fo.RecheckInterval = o.RecheckInterval // the reader's default
	if fo != o {
		t.Fatalf("file source options %+v, want the flags' %+v", fo, o)
	}
	if po := fileMultiprocOptions(nil, buildEnv{ProcFS: "/proc", Probe: true}); !po.NoStore || !po.NoMmap || po.MaxEntries != o.MaxEntries {
		t.Fatalf("probe source options %+v", po)
	}
}
