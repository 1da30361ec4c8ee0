package main

import (
	"log/slog"
	"runtime"
	"strconv"

	"github.com/wsgi-exporter/wsgi_exporter/collector"
)

// --runtime.gomaxprocs: how many threads run Go code at once. A scrape of small sources (an
// nginx page, a uWSGI stats document, a gunicorn master) is mostly waiting on sockets; on
// more than one thread the Go scheduler hands every network event to another thread, which
// costs a quarter to a third of such a scrape's CPU (docs/operations.md, "CPU and
// GOMAXPROCS"). node_exporter runs on one thread by default for the same reason. Only a
// multiprocess directory's merge runs on every core, so auto (0) keeps Go's default when one
// is configured, as a source or as a /probe module.

// procsPolicy applies --runtime.gomaxprocs to each generation of the configuration.
type procsPolicy struct {
	flag   int  // the flag's value; 0: auto
	envSet bool // GOMAXPROCS is in the environment: Go applied it, and auto leaves it alone
	logger *slog.Logger
	last   int // what the last apply set (0: nothing yet)

	set        func(n int) // runtime.GOMAXPROCS; tests replace both
	setDefault func()      // runtime.SetDefaultGOMAXPROCS
}

func newProcsPolicy(flag int, envSet bool, logger *slog.Logger) *procsPolicy {
	return &procsPolicy{flag: flag, envSet: envSet, logger: logger,
		set: func(n int) { runtime.GOMAXPROCS(n) }, setDefault: runtime.SetDefaultGOMAXPROCS}
}

// envProcs reports whether Go took GOMAXPROCS from the environment: a positive integer, as
// the runtime reads it (anything else is ignored by Go, and so by auto).
func envProcs(v string) bool {
	n, err := strconv.Atoi(v)
	return err == nil && n > 0
}

// parallelKinds are the kinds whose reads use every core (a source's Kind().Name and a
// module's kind are the same names).
var parallelKinds = map[string]bool{collector.MultiprocKind.Name: true}

// apply sets GOMAXPROCS for gen's sources and modules. It is called for the first generation
// before any scrape, and again after each reload.
func (p *procsPolicy) apply(gen *generation) {
	want, why := p.flag, "--runtime.gomaxprocs"
	switch {
	case p.flag > 0:
	case p.envSet:
		return // Go took GOMAXPROCS from the environment
	case parallelGen(gen):
		want, why = -1, "a multiprocess directory is configured: Go's default"
	default:
		want, why = 1, "no multiprocess directory is configured"
	}
	if want == p.last {
		return
	}
	p.last = want
	if want < 0 {
		p.setDefault()
	} else {
		p.set(want)
	}
	p.logger.Info("GOMAXPROCS set", "gomaxprocs", runtime.GOMAXPROCS(0), "why", why)
}

func parallelGen(gen *generation) bool {
	for _, s := range gen.exp.Sources() {
		if parallelKinds[s.Kind().Name] {
			return true
		}
	}
	for _, m := range gen.modules {
		if parallelKinds[m.Kind] {
			return true
		}
	}
	return false
}
