package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/wsgi-exporter/wsgi_exporter/collector"
	"github.com/wsgi-exporter/wsgi_exporter/config"
	"github.com/wsgi-exporter/wsgi_exporter/nginx"
	"github.com/wsgi-exporter/wsgi_exporter/redisstore"
	"github.com/wsgi-exporter/wsgi_exporter/uwsgi"
)

// probeModule is a module of the configuration file with its effective timeout.
type probeModule struct {
	*config.Module
	// timeout is the deadline when the request announces none: the module's, else
	// global.timeout, else --scrape.timeout. capped: the module set one, which also caps the
	// request's.
	timeout time.Duration
	capped  bool
}

func newProbeModule(f *config.File, m *config.Module, env buildEnv) *probeModule {
	return &probeModule{
		Module:  m,
		timeout: config.EffectiveTimeout(m.Timeout, config.EffectiveTimeout(f.Global.Timeout, env.Timeout)),
		capped:  m.Timeout > 0,
	}
}

// Probe refusal reasons besides the allow-list's (config.Refused*): label values of
// wsgi_exporter_probe_refused_total.
const (
	refusedUnknownModule = "unknown_module"    // no such module (answered 400; module label empty)
	refusedBadTarget     = "bad_target"        // not a target of the module's kind (400)
	refusedLimit         = "concurrency_limit" // --probe.max-concurrent probes already running (503)
)

var refusalReasons = []string{
	config.RefusedAddress, config.RefusedPath, config.RefusedSymlink, config.RefusedScheme,
	refusedBadTarget, refusedLimit,
}

// prober serves /probe?module=NAME&target=ADDRESS: one scrape of exactly that target with the
// module's settings. Every probe builds its own source and exporter: concurrent probes share
// nothing but the read-only module and the counters below.
type prober struct {
	fl      *fleet
	sem     chan struct{}
	opts    collector.Options // caps of the answer; TimeoutOffset and MaxTimeout for the deadline
	logger  *slog.Logger      // the per-probe exporters' log, at debug level
	probes  *prometheus.CounterVec
	refused *prometheus.CounterVec
}

func newProber(maxConcurrent int, opts collector.Options, logger *slog.Logger) *prober {
	p := &prober{
		sem:    make(chan struct{}, maxConcurrent),
		opts:   opts,
		logger: slog.New(debugOnly{logger.Handler()}).With("probe", true),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wsgi_exporter_probes_total",
			Help: "Probes run (/probe requests that passed the module's allow-list), by module.",
		}, []string{"module"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wsgi_exporter_probe_refused_total",
			Help: "/probe requests answered without probing, by module and reason: address, path, symlink, scheme (403: outside the module's allow-list), bad_target, unknown_module (400), concurrency_limit (503).",
		}, []string{"module", "reason"}),
	}
	p.refused.WithLabelValues("", refusedUnknownModule)
	return p
}

// collectors are the prober's long-lived metrics.
func (p *prober) collectors() []prometheus.Collector {
	return []prometheus.Collector{p.probes, p.refused}
}

// initModules creates the counters of every module at 0.
func (p *prober) initModules(names []string) {
	for _, n := range names {
		p.probes.WithLabelValues(n)
		for _, r := range refusalReasons {
			p.refused.WithLabelValues(n, r)
		}
	}
}

func (p *prober) refuse(w http.ResponseWriter, module, reason string, code int, msg string) {
	p.refused.WithLabelValues(module, reason).Inc()
	p.fl.current().exp.RefreshSelf() // the next answer of the metrics path counts it
	p.logger.Debug("probe refused", "module", module, "reason", reason, "code", code, "msg", msg)
	http.Error(w, msg, code)
}

func (p *prober) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	q := r.URL.Query()
	if len(q["module"]) > 1 || len(q["target"]) > 1 {
		p.refuse(w, "", refusedBadTarget, http.StatusBadRequest, "give module and target once each")
		return
	}
	name, target := q.Get("module"), q.Get("target")
	m := p.fl.current().modules[name]
	if m == nil {
		p.refuse(w, "", refusedUnknownModule, http.StatusBadRequest, fmt.Sprintf("unknown module %q", name))
		return
	}
	select {
	case p.sem <- struct{}{}:
		defer func() { <-p.sem }()
	default:
		p.refuse(w, name, refusedLimit, http.StatusServiceUnavailable,
			fmt.Sprintf("limit of concurrent probes reached (%d, --probe.max-concurrent), try again later", cap(p.sem)))
		return
	}
	ad, err := m.Check(target)
	var re *config.RefusedError
	var te *config.TargetError
	switch {
	case errors.As(err, &re):
		p.refuse(w, name, re.Reason, http.StatusForbidden, "target refused by module "+name+": "+re.Msg)
		return
	case errors.As(err, &te):
		p.refuse(w, name, refusedBadTarget, http.StatusBadRequest, "bad target for module "+name+": "+te.Msg)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer ad.Close()

	env := p.fl.env
	env.Logger = p.logger
	env.Probe = true
	src, err := newKindSource(m.Kind, m.Settings, collector.Config{Name: probeSourceName(m.Kind, target), Address: ad.Address, Timeout: m.timeout}, env, false)
	if err != nil {
		p.refuse(w, name, refusedBadTarget, http.StatusBadRequest, "bad target for module "+name+": "+err.Error())
		return
	}
	defer collector.Close(src)
	if ad.Err != nil {
		src = failedSource{Source: src, err: ad.Err}
	}
	p.probes.WithLabelValues(name).Inc()
	p.fl.current().exp.RefreshSelf()
	opts := p.opts
	opts.Logger = p.logger.With("module", name)
	exp, err := collector.New([]collector.Source{src}, opts)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	// The deadline counts from the request's arrival: the allow-list check and the set-up
	// above are part of the time Prometheus gives.
	remaining := max(p.timeout(r, m)-time.Since(start), time.Millisecond)
	mfs, err := exp.Gatherer(r.Context(), remaining).Gather()
	if err != nil {
		p.logger.Debug("gathering a probe", "module", name, "err", err)
	}
	if r.Context().Err() != nil {
		return // the scraper went away
	}
	var st collector.SourceStatus
	if all := exp.Status(); len(all) > 0 {
		st = all[0]
	}
	mfs = append(probeOwnFamilies(mfs), probeResult(st, time.Since(start))...)
	if err := writeProbeAnswer(w, r, mfs); err != nil {
		p.logger.Debug("writing a probe's answer", "module", name, "err", err)
	}
}

// probeSourceName is the source label of a probe's series: the target as given, with the
// query values of a URL hidden as for every source (they may hold a token).
func probeSourceName(kind, target string) string {
	switch kind {
	case config.KindUWSGI:
		return uwsgi.SourceName(target)
	case config.KindNginx:
		return nginx.SourceName(target)
	case config.KindMultiprocRedis:
		return redisstore.Redact(target)
	}
	return target
}

// timeout is the probe's deadline: the one the request announces (less the offset, as for
// the metrics path), capped by the module's timeout; without an announcement, the module's.
func (p *prober) timeout(r *http.Request, m *probeModule) time.Duration {
	secs, err := strconv.ParseFloat(r.Header.Get(collector.ScrapeTimeoutHeader), 64)
	if err != nil || !(secs > 0) {
		return m.timeout
	}
	announced := p.opts.MaxTimeout
	if secs < announced.Seconds() {
		announced = time.Duration(secs * float64(time.Second))
	}
	t := announced - p.opts.TimeoutOffset
	if t < announced/2 {
		t = announced / 2
	}
	if m.capped && m.timeout < t {
		t = m.timeout
	}
	return t
}

// probeOwnFamilies leaves out the per-probe exporter's counters: they would count one probe
// and start again at the next (the probe's result is in wsgi_exporter_probe_failed instead).
func probeOwnFamilies(mfs []*dto.MetricFamily) []*dto.MetricFamily {
	out := mfs[:0]
	for _, mf := range mfs {
		switch mf.GetName() {
		case "wsgi_exporter_scrape_errors_total", "wsgi_exporter_series_dropped_total":
			continue
		}
		out = append(out, mf)
	}
	return out
}

// failedSource is a target the allow-list admitted but that cannot be read (it does not
// exist): its scrape fails with that reason without reading anything.
type failedSource struct {
	collector.Source
	err error
}

func (f failedSource) Scrape(context.Context, *collector.Writer) error { return f.err }

// debugOnly logs every record at debug level: a probe of a down target is the prober's
// answer, not an event of the exporter (thousands of targets would flood the log).
type debugOnly struct{ h slog.Handler }

func (d debugOnly) Enabled(ctx context.Context, _ slog.Level) bool {
	return d.h.Enabled(ctx, slog.LevelDebug)
}

func (d debugOnly) Handle(ctx context.Context, r slog.Record) error {
	r.Level = slog.LevelDebug
	return d.h.Handle(ctx, r)
}

func (d debugOnly) WithAttrs(a []slog.Attr) slog.Handler { return debugOnly{d.h.WithAttrs(a)} }
func (d debugOnly) WithGroup(n string) slog.Handler      { return debugOnly{d.h.WithGroup(n)} }
