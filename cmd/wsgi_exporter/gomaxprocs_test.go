package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/wsgi-exporter/wsgi_exporter/collector"
	"github.com/wsgi-exporter/wsgi_exporter/config"
)

// --runtime.gomaxprocs: auto is one thread unless a multiprocess directory is configured (as a
// source or a /probe module), then Go's default; a positive flag is set as given; auto leaves
// a GOMAXPROCS environment variable alone; a generation like the last one changes nothing.
func TestProcsPolicy(t *testing.T) {
	nginx, err := collector.NewNginx(collector.Config{Address: "http://127.0.0.1:1/stub_status"}, collector.NginxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mp, err := collector.NewMultiproc(collector.Config{Address: t.TempDir()}, collector.MultiprocOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gen := func(modules map[string]*probeModule, srcs ...collector.Source) *generation {
		exp, err := collector.New(srcs, collector.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return &generation{exp: exp, modules: modules}
	}
	mpModule := map[string]*probeModule{"app": {Module: &config.Module{Kind: config.KindMultiproc}}}
	uwsgiModule := map[string]*probeModule{"u": {Module: &config.Module{Kind: config.KindUWSGI}}}

	var calls []int // n set, or -1 for the default
	policy := func(flag int, env bool) *procsPolicy {
		calls = nil
		p := newProcsPolicy(flag, env, slog.New(slog.DiscardHandler))
		p.set = func(n int) { calls = append(calls, n) }
		p.setDefault = func() { calls = append(calls, -1) }
		return p
	}
	for _, c := range []struct {
		name string
		flag int
		env  bool
		gens []*generation
		want []int
	}{
		{"nginx only", 0, false, []*generation{gen(nil, nginx)}, []int{1}},
		{"no source", 0, false, []*generation{gen(nil)}, []int{1}},
		{"multiproc source", 0, false, []*generation{gen(nil, nginx, mp)}, []int{-1}},
		{"multiproc module", 0, false, []*generation{gen(mpModule, nginx)}, []int{-1}},
		{"uwsgi module", 0, false, []*generation{gen(uwsgiModule)}, []int{1}},
		{"reload adds and drops a directory", 0, false,
			[]*generation{gen(nil, nginx), gen(nil, nginx), gen(nil, mp), gen(nil, nginx)}, []int{1, -1, 1}},
		{"environment", 0, true, []*generation{gen(nil, nginx), gen(nil, mp)}, nil},
		{"flag", 3, false, []*generation{gen(nil, nginx), gen(nil, mp)}, []int{3}},
		{"flag over environment", 2, true, []*generation{gen(nil, mp)}, []int{2}},
	} {
		p := policy(c.flag, c.env)
		for _, g := range c.gens {
			p.apply(g)
		}
		if !slices.Equal(calls, c.want) {
			t.Errorf("%s: calls %v, want %v", c.name, calls, c.want)
		}
	}
}

// Only a GOMAXPROCS that Go applies counts as set: a positive integer.
func TestEnvProcs(t *testing.T) {
	for v, want := range map[string]bool{"": false, "1": true, "3": true, "0": false, "-2": false, "abc": false, "2x": false} {
		if got := envProcs(v); got != want {
			t.Errorf("envProcs(%q) = %v, want %v", v, got, want)
		}
	}
}

// A reload sets the new generation's GOMAXPROCS before the generation serves: a scrape that
// came in between would read a new multiprocess directory with one thread, which its reader
// keeps for good.
func TestReloadSetsProcsBeforeServing(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	dir := t.TempDir()
	mpdir := filepath.Join(dir, "mp")
	if err := os.Mkdir(mpdir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, "sources:\n  - {kind: nginx, address: \"http://127.0.0.1:1/stub_status\"}\n")
	fl, srv := probeServer(t, "--config.file="+cfg)
	if n := runtime.GOMAXPROCS(0); n != 1 {
		t.Fatalf("GOMAXPROCS %d after an nginx-only start, want 1", n)
	}
	set, served := false, false
	setDefault := fl.procs.setDefault
	fl.procs.setDefault = func() {
		_, mfs, _ := get(t, srv.URL+"/metrics", "") // a scrape arriving now
		set = true
		_, served = mfs["multiproc_up"]
		setDefault()
	}
	writeConfig(t, dir, fmt.Sprintf("sources:\n  - {kind: multiproc, address: %q}\n", mpdir))
	if err := fl.reload(); err != nil {
		t.Fatal(err)
	}
	if !set {
		t.Fatal("the reload to a multiprocess directory did not set Go's default GOMAXPROCS")
	}
	if served {
		t.Error("the new generation's multiprocess directory was scraped before GOMAXPROCS was set for it")
	}
}
