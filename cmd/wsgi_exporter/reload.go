package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsgi-exporter/wsgi_exporter/collector"
	"github.com/wsgi-exporter/wsgi_exporter/config"
)

// fleet is the running configuration: the flags' sources (fixed for the life of the process),
// the configuration file's sources and probe modules (replaced by a reload), and the exporter
// that serves them. A request takes the current generation when it starts and keeps it to
// the end: a reload replaces the generation for later requests only.
type fleet struct {
	logger  *slog.Logger
	path    string // --config.file; "" when there is none
	env     buildEnv
	expOpts collector.Options
	// flagSources are the sources of the flags; flagApps counts them by kind (a file entry's
	// dir_label or url_label auto counts them too).
	flagSources []collector.Source
	flagApps    map[string]int
	// shared are the exporter process's long-lived collectors (the reload gauges, the probe
	// counters), registered with every generation's RegisterShared: every change of one of
	// them is followed by RefreshSelf, so they are gathered only then. The process and Go
	// metrics and build info are expOpts.Self, written by the collector package; the request
	// counters of the metrics path are expOpts.HandlerMetrics, kept by the handler. All
	// survive reloads.
	shared []prometheus.Collector
	// newLanding builds the landing page of a generation (nil: none).
	newLanding func(*collector.Exporter, map[string]*probeModule) (http.Handler, error)
	prober     *prober // nil: no /probe
	procs      *procsPolicy

	cur atomic.Pointer[generation]

	mu      sync.Mutex // one reload at a time; guards runners and ctx
	ctx     context.Context
	runners map[collector.Source]*runner

	reloadOK   prometheus.Gauge
	reloadTime prometheus.Gauge
}

// generation is one configuration: its exporter and what /probe needs.
type generation struct {
	exp     *collector.Exporter
	metrics http.Handler
	landing http.Handler
	file    *config.File // nil without --config.file
	// byPrint maps the fingerprint of each file entry to its source, so that a reload can keep
	// the sources whose definition did not change (a statsd listener keeps its socket and
	// counters, a multiprocess directory its mappings, a gunicorn master its restart count).
	byPrint map[string]collector.Source
	modules map[string]*probeModule
}

// runner is a background source's Run, stoppable on its own.
type runner struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// runnerStopWait bounds the wait for a removed background source to let go of its socket.
const runnerStopWait = 5 * time.Second

// fleetOptions are what newFleet needs.
type fleetOptions struct {
	Path        string             // --config.file; "" none
	FlagSources []collector.Source // the flags' sources
	Env         buildEnv
	Exporter    collector.Options
	// Landing builds a generation's landing page; nil: none.
	Landing func(*collector.Exporter, map[string]*probeModule) (http.Handler, error)
	// Prober serves /probe with the generations' modules; nil: none.
	Prober *prober
	// Procs sets GOMAXPROCS for each generation; nil: left alone.
	Procs *procsPolicy
}

// newFleet loads the configuration file, if any, and builds the first generation. The error
// describes an invalid configuration.
func newFleet(o fleetOptions) (*fleet, error) {
	fl := &fleet{
		logger:      o.Env.Logger,
		path:        o.Path,
		env:         o.Env,
		expOpts:     o.Exporter,
		flagSources: o.FlagSources,
		newLanding:  o.Landing,
		prober:      o.Prober,
		procs:       o.Procs,
		runners:     map[collector.Source]*runner{},
	}
	fl.expOpts.HandlerMetrics = collector.NewHandlerMetrics()
	fl.flagApps = map[string]int{}
	for _, s := range o.FlagSources {
		fl.flagApps[s.Kind().Name]++
	}
	if fl.prober != nil {
		fl.prober.fl = fl
		fl.shared = append(fl.shared, fl.prober.collectors()...)
	}
	if o.Path != "" {
		fl.reloadOK = prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wsgi_exporter_config_last_reload_successful",
			Help: "Whether the last configuration reload attempt was successful (1) or kept the old configuration (0).",
		})
		fl.reloadTime = prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wsgi_exporter_config_last_reload_success_timestamp_seconds",
			Help: "Timestamp of the last successful configuration reload (the start, for the first load).",
		})
		fl.shared = append(fl.shared, fl.reloadOK, fl.reloadTime)
	}
	gen, err := fl.build(nil)
	if err != nil {
		return nil, err
	}
	fl.applyProcs(gen) // before any scrape of gen: a multiprocess reader takes it at its first read
	fl.cur.Store(gen)
	if fl.reloadOK != nil {
		fl.reloadOK.Set(1)
		fl.reloadTime.SetToCurrentTime()
	}
	return fl, nil
}

func (fl *fleet) applyProcs(gen *generation) {
	if fl.procs != nil {
		fl.procs.apply(gen)
	}
}

// current is the generation requests use now.
func (fl *fleet) current() *generation { return fl.cur.Load() }

// build loads the file and builds a generation, keeping prev's sources whose entry did not
// change. Nothing of prev is changed; nothing new is started.
func (fl *fleet) build(prev *generation) (*generation, error) {
	gen := &generation{byPrint: map[string]collector.Source{}, modules: map[string]*probeModule{}}
	all := make([]placed, 0, len(fl.flagSources))
	for _, s := range fl.flagSources {
		all = append(all, placed{src: s, where: flagPlace(s)})
	}
	if fl.path != "" {
		f, err := config.Load(fl.path)
		if err != nil {
			return nil, err
		}
		gen.file = f
		perKind := maps.Clone(fl.flagApps)
		for _, s := range f.Sources {
			perKind[s.Kind]++
		}
		for _, s := range f.Sources {
			dirLabel := appLabel(s, perKind[s.Kind])
			cfg := fileSourceConfig(f, s, fl.env)
			// The print covers what the entry is built from besides its text: the effective
			// timeout (global.timeout may have changed) and the application label decision.
			print := fmt.Sprintf("%s/%v/%t", s.Fingerprint(), cfg.Timeout, dirLabel)
			src := prev.source(print)
			if src == nil {
				var err error
				if src, err = newKindSource(s.Kind, s.Settings, cfg, fl.env, dirLabel); err != nil {
					return nil, fmt.Errorf("%s: %w", s.Where(), err)
				}
			}
			gen.byPrint[print] = src
			all = append(all, placed{src: src, where: s.Where()})
		}
		for name, m := range f.Modules {
			gen.modules[name] = newProbeModule(f, m, fl.env)
		}
		if fl.prober != nil {
			fl.prober.initModules(slices.Sorted(maps.Keys(f.Modules)))
		}
	}
	if err := checkDuplicates(all); err != nil {
		return nil, err
	}
	sources := make([]collector.Source, len(all))
	for i, p := range all {
		sources[i] = p.src
	}
	exp, err := collector.New(sources, fl.expOpts)
	if err != nil {
		return nil, err
	}
	if err := exp.RegisterShared(fl.shared...); err != nil {
		return nil, fmt.Errorf("registering the exporter's own metrics: %w", err)
	}
	gen.exp = exp
	gen.metrics = exp.Handler()
	if fl.newLanding != nil {
		if gen.landing, err = fl.newLanding(exp, gen.modules); err != nil {
			return nil, err
		}
	}
	return gen, nil
}

// source is the running source of an unchanged file entry, or nil.
func (g *generation) source(print string) collector.Source {
	if g == nil {
		return nil
	}
	return g.byPrint[print]
}

// wait waits until every background source has stopped, after the context given to start
// ended.
func (fl *fleet) wait() {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	for s, r := range fl.runners {
		<-r.done
		delete(fl.runners, s)
	}
}

// start runs the background sources until ctx ends; later reloads start and stop theirs.
func (fl *fleet) start(ctx context.Context) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	fl.ctx = ctx
	fl.syncRunners(fl.current())
}

// syncRunners stops the background sources gen no longer has (waiting, within
// runnerStopWait, until each has let go of its socket) and then starts gen's new ones.
// Called with mu held.
func (fl *fleet) syncRunners(gen *generation) {
	if fl.ctx == nil {
		return
	}
	keep := map[collector.Source]bool{}
	for _, s := range gen.exp.Sources() {
		keep[s] = true
	}
	for s, r := range fl.runners {
		if keep[s] {
			continue
		}
		r.cancel()
		select {
		case <-r.done:
		case <-time.After(runnerStopWait):
			fl.logger.Warn("a removed background source did not stop in time", "kind", s.Kind().Name, "source", s.Config().SourceName())
		}
		delete(fl.runners, s)
	}
	for _, s := range gen.exp.Sources() {
		r, ok := s.(collector.Runner)
		if !ok || fl.runners[s] != nil {
			continue
		}
		ctx, cancel := context.WithCancel(fl.ctx)
		run := &runner{cancel: cancel, done: make(chan struct{})}
		fl.runners[s] = run
		go func() {
			defer close(run.done)
			if err := r.Run(ctx); err != nil && ctx.Err() == nil {
				fl.logger.Error("background source stopped", "kind", r.Kind().Name, "source", r.Config().SourceName(), "err", err)
			}
		}()
	}
}

// errNoConfigFile: a reload was asked for, but there is no file to reload.
var errNoConfigFile = errors.New("no configuration file to reload (--config.file is not set)")

// reload loads the file again. On success the new configuration serves the requests that
// start from now on; on failure the old one stays, the reason is returned (the caller logs
// it) and wsgi_exporter_config_last_reload_successful reads 0.
func (fl *fleet) reload() error {
	if fl.path == "" {
		return errNoConfigFile
	}
	fl.mu.Lock()
	defer fl.mu.Unlock()
	old := fl.current()
	gen, err := fl.build(old)
	if err != nil {
		fl.reloadOK.Set(0)
		old.exp.RefreshSelf()
		return err
	}
	fl.applyProcs(gen) // before any scrape of gen: a multiprocess reader takes it at its first read
	fl.cur.Store(gen)
	fl.syncRunners(gen)
	fl.closeRemoved(old, gen)
	fl.reloadOK.Set(1)
	fl.reloadTime.SetToCurrentTime()
	gen.exp.RefreshSelf()
	kept := 0
	for p := range gen.byPrint {
		if old.byPrint[p] != nil {
			kept++
		}
	}
	fl.logger.Info("configuration reloaded", "file", fl.path, "file_sources", len(gen.byPrint), "kept_running", kept, "modules", len(gen.modules))
	return nil
}

// closeRemoved releases what the sources old had and gen has not hold (kept connections,
// mapped files). A scrape of the old generation still running finishes first (see
// collector.Close).
func (fl *fleet) closeRemoved(old, gen *generation) {
	keep := map[collector.Source]bool{}
	for _, s := range gen.exp.Sources() {
		keep[s] = true
	}
	for _, s := range old.exp.Sources() {
		if !keep[s] {
			go collector.Close(s)
		}
	}
}

// ServeHTTP serves the metrics path with the current generation.
func (fl *fleet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fl.current().metrics.ServeHTTP(w, r)
}

// landingHandler serves the current generation's landing page.
func (fl *fleet) landingHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l := fl.current().landing; l != nil {
			l.ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	})
}

// reloadHook is what SIGHUP calls: nil without a configuration file.
func (fl *fleet) reloadHook() func() error {
	if fl.path == "" {
		return nil
	}
	return fl.reload
}

// reloadHandler serves POST (or PUT) /-/reload when lifecycle is enabled, as Prometheus does.
func (fl *fleet) reloadHandler(lifecycle bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !lifecycle {
			http.Error(w, "Lifecycle API is not enabled (--web.enable-lifecycle).", http.StatusForbidden)
			return
		}
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			w.Header().Set("Allow", "POST, PUT")
			http.Error(w, "Only POST or PUT requests allowed.", http.StatusMethodNotAllowed)
			return
		}
		switch err := fl.reload(); {
		case errors.Is(err, errNoConfigFile):
			http.Error(w, err.Error(), http.StatusBadRequest)
		case err != nil:
			fl.logger.Error("POST /-/reload: reloading the configuration failed; the old one stays", "file", fl.path, "err", err)
			http.Error(w, "failed to reload the configuration: "+err.Error(), http.StatusInternalServerError)
		default:
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte("configuration reloaded\n"))
		}
	})
}
