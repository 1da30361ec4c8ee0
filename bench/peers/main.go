// Command peers runs wsgi_exporter side by side with the exporters it replaces, against real
// servers started here on loopback, and prints latency, CPU and memory of each with the ratios
// (docs/benchmarks.md, "Side by side with the peers"). It builds nothing: it is given the
// binaries. bench/peers.sh and bench/statsd_peers.sh run it.
//
//	peers scrape --uwsgi-exporter PATH --nginx-exporter PATH --ours PATH [flags]
//	peers statsd --statsd-exporter PATH --ours PATH --mapping FILE --lines FILE [flags]
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func numCPU() int { return runtime.NumCPU() }

// prometheusAccept is the Accept header of Prometheus 3's default scrape_protocols
// (OpenMetrics 1.0.0 and 0.0.1, then the text format 1.0.0 and 0.0.4).
const prometheusAccept = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5," +
	"application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3," +
	"text/plain;version=0.0.4;q=0.2,*/*;q=0.1"

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  peers scrape --uwsgi-exporter PATH --nginx-exporter PATH --ours PATH [--workers 4,64,256] [--scrapes 400] ...
  peers statsd --statsd-exporter PATH --ours PATH --mapping bench/statsd_mapping.yml --lines fixtures/gunicorn/gunicorn_statsd_lines.txt [--rates 20000,50000,100000] ...
Run "peers scrape -h" or "peers statsd -h" for every flag. Paths default to the environment
variables UWSGI_EXPORTER, NGINX_EXPORTER, STATSD_EXPORTER and OURS.
`)
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	mode, args := os.Args[1], os.Args[2:]
	fs := flag.NewFlagSet("peers "+mode, flag.ExitOnError)
	ours := fs.String("ours", os.Getenv("OURS"), "wsgi_exporter binary ($OURS)")
	workDir := fs.String("workdir", "", "directory for sockets, configs and logs (default: a new temporary directory, removed at the end unless --keep)")
	keep := fs.Bool("keep", false, "keep the work directory (the processes' logs)")
	var run func(dir string) error
	switch mode {
	case "scrape":
		c := scrapeConfig{}
		fs.StringVar(&c.uwsgiPeer, "uwsgi-exporter", os.Getenv("UWSGI_EXPORTER"), "timonwong/uwsgi_exporter binary ($UWSGI_EXPORTER)")
		fs.StringVar(&c.nginxPeer, "nginx-exporter", os.Getenv("NGINX_EXPORTER"), "nginxinc/nginx-prometheus-exporter binary ($NGINX_EXPORTER)")
		workers := fs.String("workers", "4,64,256", "uWSGI worker counts to run, comma-separated (empty: no uWSGI)")
		fs.IntVar(&c.scrapes, "scrapes", 400, "measured scrapes per exporter (uWSGI below 256 workers, nginx)")
		fs.IntVar(&c.scrapes256, "scrapes-256", 200, "measured scrapes per exporter at 256 or more uWSGI workers")
		fs.IntVar(&c.fixedScrapes, "fixed-scrapes", 800, "measured scrapes per exporter of the fixed-cost case")
		fs.IntVar(&c.opts.warmup, "warmup", 10, "scrapes per exporter before measuring")
		fs.BoolVar(&c.nginx, "nginx", true, "run the nginx case")
		fs.BoolVar(&c.fixed, "fixed", true, "run the fixed-cost case (no source, or an unreachable one)")
		fs.StringVar(&c.opts.accept, "accept", "", `Accept header of the scrapes (default: none, the text format as curl gets it; Prometheus sends e.g. "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")`)
		fs.BoolVar(&c.opts.gzip, "gzip", false, "ask for gzip (Accept-Encoding), as Prometheus does")
		asPrometheus := fs.Bool("prometheus", false, "negotiate as Prometheus 3 does by default: --accept "+prometheusAccept+" --gzip")
		_ = fs.Parse(args)
		if *asPrometheus {
			c.opts.accept, c.opts.gzip = prometheusAccept, true
		}
		var err error
		if c.workers, err = intList(*workers); err != nil {
			fail(err)
		}
		var missing []string
		need := func(flagName, path string) {
			if path == "" {
				missing = append(missing, "--"+flagName)
			} else if err := executable(path); err != nil {
				fail(err)
			}
		}
		need("ours", *ours)
		if len(c.workers) > 0 || c.fixed {
			need("uwsgi-exporter", c.uwsgiPeer)
		}
		if c.nginx || c.fixed {
			need("nginx-exporter", c.nginxPeer)
		}
		if len(missing) > 0 {
			usage()
			fail(fmt.Errorf("missing %s", strings.Join(missing, ", ")))
		}
		c.ours, c.uwsgiPeer, c.nginxPeer = absPath(*ours), absPath(c.uwsgiPeer), absPath(c.nginxPeer)
		run = func(dir string) error { return runScrapes(dir, c) }
	case "statsd":
		c := statsdConfig{}
		fs.StringVar(&c.peer, "statsd-exporter", os.Getenv("STATSD_EXPORTER"), "prometheus/statsd_exporter binary ($STATSD_EXPORTER)")
		fs.StringVar(&c.mapping, "mapping", "bench/statsd_mapping.yml", "statsd_exporter mapping file giving wsgi_exporter's series")
		fs.StringVar(&c.lines, "lines", "fixtures/gunicorn/gunicorn_statsd_lines.txt", "gunicorn statsd capture whose unprefixed, untagged lines are replayed")
		rates := fs.String("rates", "20000,50000,100000", "send rates, lines (datagrams) per second, comma-separated")
		fs.DurationVar(&c.duration, "duration", 6*time.Second, "sending time per exporter and rate")
		fs.DurationVar(&c.chunk, "chunk", time.Second, "the exporters receive in turn for this long each (A, B, A, B, ...)")
		fs.IntVar(&c.readBuffer, "read-buffer", 4<<20, "statsd_exporter --statsd.read-buffer, bytes (wsgi_exporter asks for 4 MiB; both are capped by net.core.rmem_max)")
		_ = fs.Parse(args)
		var err error
		if c.rates, err = intList(*rates); err != nil {
			fail(err)
		}
		if *ours == "" || c.peer == "" {
			usage()
			fail(errors.New("missing --ours or --statsd-exporter"))
		}
		for _, p := range []string{*ours, c.peer} {
			if err := executable(p); err != nil {
				fail(err)
			}
		}
		for _, p := range []string{c.mapping, c.lines} {
			if _, err := os.Stat(p); err != nil {
				fail(err)
			}
		}
		c.ours, c.peer, c.mapping, c.lines = absPath(*ours), absPath(c.peer), absPath(c.mapping), absPath(c.lines)
		run = func(dir string) error { return runStatsd(dir, c) }
	case "-h", "--help", "help":
		usage()
		return
	default:
		usage()
		os.Exit(2)
	}

	dir := *workDir
	if dir == "" {
		d, err := os.MkdirTemp("", "wsgi-peers-")
		if err != nil {
			fail(err)
		}
		dir = d
		if !*keep {
			defer os.RemoveAll(dir)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		fail(err)
	}
	if d, err := filepath.Abs(dir); err == nil {
		dir = d
	}

	// On SIGINT, SIGTERM, SIGHUP or SIGPIPE (output piped into head) stop what was started, then exit.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	// The run then fails (its servers are gone, nothing more may start); the work directory is
	// removed once it has returned, so that it cannot create files there again.
	var interrupted atomic.Bool
	runDone := make(chan struct{})
	go func() {
		s := <-sig
		interrupted.Store(true)
		fmt.Fprintf(os.Stderr, "\n%v: stopping the processes started here\n", s)
		stopAll()
		select {
		case <-runDone:
		case <-time.After(10 * time.Second):
		}
		if !*keep && *workDir == "" {
			os.RemoveAll(dir)
		}
		os.Exit(130)
	}()

	fmt.Printf("machine: %s; %s\n", machine(), time.Now().UTC().Format(time.RFC3339))
	fmt.Printf("work directory: %s\n", dir)
	err := run(dir)
	close(runDone)
	if interrupted.Load() {
		select {} // the signal handler stops everything and exits
	}
	stopAll()
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		if !*keep && *workDir == "" {
			os.RemoveAll(dir)
		}
		os.Exit(1)
	}
	if *keep || *workDir != "" {
		fmt.Printf("logs kept in %s\n", dir)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "error: %v\n", err)
	os.Exit(2)
}

// absPath makes a path absolute: the processes run in the work directory.
func absPath(p string) string {
	if p == "" {
		return p
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func executable(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}

func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" || f == "none" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("not a positive number: %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}
