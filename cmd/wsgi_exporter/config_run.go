package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"

	"github.com/wsgi-exporter/wsgi_exporter/collector"
)

// newFleet builds what is served from the parsed flags, the flags' sources and the
// configuration file: the first generation, the prober and the exporter's own metrics.
func (s *settings) newFleet(sources []collector.Source, logger *slog.Logger) (*fleet, error) {
	if *s.fleet.probeMax <= 0 {
		return nil, fmt.Errorf("--probe.max-concurrent must be positive, got %d", *s.fleet.probeMax)
	}
	switch *s.metricsPath {
	case "/probe", "/-/reload", "/-/healthy":
		return nil, fmt.Errorf("--web.telemetry-path %s: the exporter serves that path itself; choose another", *s.metricsPath)
	}
	expOpts := collector.Options{Logger: logger, TimeoutOffset: *s.timeoutOffset, MaxTimeout: *s.maxTimeout,
		MaxRequestsInFlight: *s.maxRequests, MaxSeriesPerSource: *s.maxSeries, MaxLabelValueLength: *s.maxLabelLen,
		SelfMetricsMaxAge: *s.selfMaxAge}
	var landing func(*collector.Exporter, map[string]*probeModule) (http.Handler, error)
	if *s.metricsPath != "/" && *s.metricsPath != "" {
		landing = func(exp *collector.Exporter, modules map[string]*probeModule) (http.Handler, error) {
			return newLandingPage(exp, *s.metricsPath, *s.enablePprof).withModules(modules), nil
		}
	}
	// The metrics path serves the process's own metrics (process_*, go_*, build info), one
	// writer for every generation; /probe answers do not.
	fleetOpts := expOpts
	fleetOpts.Self = collector.NewSelfMetrics()
	return newFleet(fleetOptions{
		Path:        *s.fleet.file,
		FlagSources: sources,
		Env:         buildEnv{Timeout: *s.timeout, ProcFS: *s.procfs, Logger: logger},
		Exporter:    fleetOpts,
		Landing:     landing,
		Prober:      newProber(*s.fleet.probeMax, expOpts, logger),
		Procs:       newProcsPolicy(*s.gomaxprocs, envProcs(os.Getenv("GOMAXPROCS")), logger),
	})
}

// invalid reports an invalid configuration: exit code 1 and the reason on stderr under
// --config.check, else the error logged and exit code 2.
func (s *settings) invalid(stderr io.Writer, logger *slog.Logger, err error) int {
	if *s.fleet.check {
		fmt.Fprintf(stderr, "%s: invalid configuration: %v\n", exporterName, err)
		return exitCheckFailed
	}
	logger.Error("invalid configuration", "err", err)
	return 2
}

// checked reports a valid configuration under --config.check.
func (fl *fleet) checked(stdout io.Writer) int {
	gen := fl.current()
	file := "no configuration file"
	if fl.path != "" {
		file = fl.path
	}
	fmt.Fprintf(stdout, "configuration valid (%s): %d sources (%d from flags), %d probe modules\n",
		file, len(gen.exp.Sources()), len(fl.flagSources), len(gen.modules))
	return 0
}

// routes adds the configuration's endpoints: /probe, /-/reload, the metrics path and the
// landing page.
func (fl *fleet) routes(mux *http.ServeMux, metricsPath string, lifecycle bool) {
	mux.Handle(metricsPath, fl)
	mux.Handle("/probe", fl.prober)
	mux.Handle("/-/reload", fl.reloadHandler(lifecycle))
	if metricsPath != "/" && metricsPath != "" {
		mux.Handle("/", fl.landingHandler())
	}
}
