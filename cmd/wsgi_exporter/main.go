// Command wsgi_exporter exports uWSGI, nginx and gunicorn metrics from outside the processes.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	webflag "github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/wsgi-exporter/wsgi_exporter/collector"
)

const (
	exporterName = "wsgi_exporter"
	// defaultAddress is outside 9100-9999, the range the Prometheus default port allocation
	// list has used up.
	defaultAddress = ":10133"
	envPrefix      = "WSGI_EXPORTER_"
)

// common holds the settings every kind of source shares.
type common struct {
	Timeout time.Duration
	Logger  *slog.Logger
	// ProcFS is the proc filesystem's mount point (--path.procfs); empty means none.
	ProcFS string
	// ProcFSFlag names the flag ProcFS came from, for error messages.
	ProcFSFlag string
}

// kindFlags is one kind of source's flags; build turns them into sources once parsed.
type kindFlags interface {
	build(c common) ([]collector.Source, error)
}

// kinds holds the flag registrations of every kind of source, one file each in this folder.
var kinds []func(app *kingpin.Application) kindFlags

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// settings are the parsed flags.
type settings struct {
	metricsPath   *string
	enablePprof   *bool
	maxRequests   *int
	timeout       *time.Duration
	timeoutOffset *time.Duration
	maxTimeout    *time.Duration
	maxSeries     *int
	maxLabelLen   *int
	selfMaxAge    *time.Duration
	toolkitFlags  *web.FlagConfig
	logConfig     *promslog.Config
	procfs        *string
	gomaxprocs    *int
	server        *serverFlags
	kinds         []kindFlags
	fleet         *fleetFlags
}

// newApp declares every flag, each also read from its environment variable.
func newApp() (*kingpin.Application, *settings) {
	app := kingpin.New(exporterName, "Prometheus exporter for Python WSGI stacks: uWSGI, nginx and gunicorn, read from outside the worker processes.")
	s := &settings{
		metricsPath:   app.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").String(),
		enablePprof:   app.Flag("web.enable-pprof", "Serve Go profiling endpoints under /debug/pprof/.").Default("false").Bool(),
		maxRequests:   app.Flag("web.max-requests", "Most scrapes of the metrics path served at once; more are answered 503. 0: no limit.").Default("40").Int(),
		timeout:       app.Flag("scrape.timeout", "Deadline of a source's scrape when Prometheus sends no X-Prometheus-Scrape-Timeout-Seconds header.").Default("5s").Duration(),
		timeoutOffset: app.Flag("scrape.timeout-offset", "Taken off the scrape timeout Prometheus announces, to answer before it gives up.").Default("500ms").Duration(),
		maxTimeout:    app.Flag("scrape.max-timeout", "Largest scrape timeout a request may announce in X-Prometheus-Scrape-Timeout-Seconds; a larger one counts as this, so that a hung source holds a request at most this long.").Default("2m").Duration(),
		maxSeries: app.Flag("scrape.max-series-per-source", "Most series one source may add to an answer (a histogram counts each bucket, its sum and its count); more are left out and counted in wsgi_exporter_series_dropped_total{reason=\"series_limit\"}.").
			Default(strconv.Itoa(collector.DefaultMaxSeriesPerSource)).Int(),
		maxLabelLen: app.Flag("scrape.max-label-value-length", "Longest label value, in bytes, a series read from a source may carry; a series with a longer one is left out and counted in wsgi_exporter_series_dropped_total{reason=\"label_value_too_long\"}.").
			Default(strconv.Itoa(collector.DefaultMaxLabelValueLength)).Int(),
		selfMaxAge: app.Flag("scrape.self-metrics-max-age", "The exporter's own process and Go runtime metrics (process_*, go_*) and build info are gathered at most once per this period; answers closer together (several scrapers, /probe fan-out, benchmarks) reuse them. 0: gathered for every answer.").
			Default("1s").Duration(),
		toolkitFlags: webflag.AddFlags(app, defaultAddress),
		server:       addServerFlags(app),
		procfs: app.Flag("path.procfs",
			"Mount point of the proc filesystem that shows the served processes (e.g. /host/proc in a container): gunicorn's master and workers, and the multiprocess directories' writers. Empty: none (pidfiles cannot be read, and the multiprocess liveness check is off).").
			Default("/proc").String(),
		gomaxprocs: app.Flag("runtime.gomaxprocs",
			"Most threads running Go code at once (GOMAXPROCS). 0: 1 unless a multiprocess directory is configured (as a source or a /probe module: its merge runs on every core), then Go's default; a GOMAXPROCS environment variable is then left as it is.").
			Default("0").Int(),
		logConfig: &promslog.Config{},
	}
	flag.AddFlags(app, s.logConfig)
	s.fleet = addFleetFlags(app)
	for _, k := range kinds {
		s.kinds = append(s.kinds, k(app))
	}
	app.Version(version.Print(exporterName))
	app.HelpFlag.Short('h')
	addEnvars(app)
	return app, s
}

func run(args []string, stdout, stderr *os.File) int {
	app, s := newApp()
	app.UsageWriter(stdout)
	app.ErrorWriter(stderr)
	if _, err := app.Parse(args); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", exporterName, flagError(app, args, err))
		return exitConfig
	}
	if *s.maxTimeout <= 0 {
		fmt.Fprintf(stderr, "%s: --scrape.max-timeout must be positive, got %v\n", exporterName, *s.maxTimeout)
		return 2
	}
	if *s.selfMaxAge < 0 {
		fmt.Fprintf(stderr, "%s: --scrape.self-metrics-max-age must not be negative\n", exporterName)
		return 2
	}
	if *s.gomaxprocs < 0 {
		fmt.Fprintf(stderr, "%s: --runtime.gomaxprocs must not be negative\n", exporterName)
		return 2
	}
	if *s.maxSeries <= 0 || *s.maxLabelLen <= 0 {
		fmt.Fprintf(stderr, "%s: --scrape.max-series-per-source and --scrape.max-label-value-length must be positive\n", exporterName)
		return 2
	}
	if err := s.server.check(); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", exporterName, err)
		return 2
	}
	s.logConfig.Writer = stderr
	logger := promslog.New(s.logConfig)
	logger.Info("starting "+exporterName, "version", version.Info())
	logger.Info("build context", "build_context", version.BuildContext())
	if err := checkWebConfig(*s.toolkitFlags.WebConfigFile); err != nil {
		logger.Error("invalid configuration", "err", err)
		return exitConfig
	}

	var sources []collector.Source
	c := common{Timeout: *s.timeout, Logger: logger, ProcFS: *s.procfs, ProcFSFlag: "--path.procfs"}
	for _, k := range s.kinds {
		built, err := k.build(c)
		if err != nil {
			return s.invalid(stderr, logger, err)
		}
		sources = append(sources, built...)
	}
	fl, err := s.newFleet(sources, logger)
	if err != nil {
		return s.invalid(stderr, logger, err)
	}
	if *s.fleet.check {
		return fl.checked(stdout)
	}
	logSources(logger, fl.current().exp.Sources())
	if len(fl.current().exp.Sources()) == 0 && len(fl.current().modules) == 0 {
		logger.Warn("no source configured: only the exporter's own metrics will be served (see --help)")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	handleHangups(logger, fl.reloadHook())
	// Background sources run until the web server has stopped: a scrape in flight at SIGTERM
	// still sees them.
	runCtx, cancelRunners := context.WithCancel(context.Background())
	fl.start(runCtx)
	stopRunners := func() { cancelRunners(); fl.wait() }

	mux, err := newMux(fl, *s.metricsPath, *s.enablePprof, *s.fleet.lifecycle)
	if err != nil {
		logger.Error("cannot build the web interface", "err", err)
		stopRunners()
		return 1
	}
	return serve(ctx, stop, serverConfig{
		handler: mux, toolkit: s.toolkitFlags, logger: logger, flags: s.server,
		// each probe in flight holds a connection to its target, like a source
		sources:       len(fl.current().exp.Sources()) + *s.fleet.probeMax,
		longestScrape: max(*s.maxTimeout, *s.timeout),
		stopRunners:   stopRunners,
	})
}

// newMux builds the HTTP endpoints: metrics, probe, reload, health, landing page and, when
// asked, pprof.
func newMux(fl *fleet, metricsPath string, pprof, lifecycle bool) (*http.ServeMux, error) {
	mux := http.NewServeMux()
	// The exporter's handler counts its errors in promhttp_metric_handler_errors_total; the
	// fleet counts the requests (promhttp_metric_handler_requests_total).
	fl.routes(mux, metricsPath, lifecycle)
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("Healthy\n"))
	})
	if pprof {
		addPprof(mux)
	}
	return mux, nil
}

var nonAlnum = regexp.MustCompile(`[^A-Z0-9]+`)

// envarName maps a flag name to its environment variable: web.listen-address becomes
// WSGI_EXPORTER_WEB_LISTEN_ADDRESS.
func envarName(flagName string) string {
	return envPrefix + nonAlnum.ReplaceAllString(strings.ToUpper(flagName), "_")
}

// addEnvars makes every flag readable from an environment variable; --help names it.
func addEnvars(app *kingpin.Application) {
	for _, f := range app.Model().Flags {
		switch f.Name {
		case "help", "version":
			continue
		}
		app.GetFlag(f.Name).Envar(envarName(f.Name))
	}
}
