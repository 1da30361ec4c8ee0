package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// spec is one exporter of a scenario: how to run it and what its output must show.
type spec struct {
	label  string
	bin    string
	args   []string
	up     string  // metric whose samples must all equal upWant (a check that it read the source)
	upWant float64 //
}

// scenario is a set of exporters scraped in turn, each pointed at the same server.
type scenario struct {
	name  string // short, for the summary tables
	title string
	specs []spec
	pairs [][2]int // (ours, peer) indexes into specs, for the ratios
	n     int      // measured scrapes per exporter
}

// row is what was measured of one exporter in one scenario.
type row struct {
	scenario, label string
	series          int
	bytes           int64  // of one measured response
	ctype           string // its Content-Type
	p50, p99        time.Duration
	cpuMs           float64 // per scrape, utime+stime
	schedMs         float64 // per scrape, threads' schedstat run time
	rssKiB, hwmKiB  int64
}

type scrapeOpts struct {
	warmup int
	accept string
	gzip   bool
}

// runScenario starts the scenario's exporters, checks each read its source, makes warmup
// then n measured scrapes of each in turn (A, B, A, B, ...), and reads each process' CPU time
// around the measured scrapes and its memory at the end. The exporters are stopped on return.
func runScenario(dir string, sc scenario, o scrapeOpts) ([]row, error) {
	exps := make([]*exporter, len(sc.specs))
	defer func() {
		for _, e := range exps {
			if e != nil {
				e.proc.stop()
			}
		}
	}()
	for i, s := range sc.specs {
		e, err := startExporter(dir, s.label, s.bin, s.args)
		if err != nil {
			return nil, err
		}
		exps[i] = e
	}
	rows := make([]row, len(exps))
	for i, e := range exps {
		body, err := text(e.url)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.label, err)
		}
		if s := sc.specs[i]; s.up != "" {
			v, n := sum(body, s.up)
			if n == 0 || v != s.upWant*float64(n) {
				return nil, fmt.Errorf("%s: want every %s sample at %v, got sum %v over %d samples (log: %s)", e.label, s.up, s.upWant, v, n, e.proc.logTail())
			}
		}
		rows[i] = row{scenario: sc.name, label: e.label, series: series(body)}
	}
	sp := newScraper(o.accept, o.gzip)
	for w := 0; w < o.warmup; w++ {
		for _, e := range exps {
			if _, _, err := sp.scrape(e.url); err != nil {
				return nil, fmt.Errorf("%s: %w", e.label, err)
			}
		}
	}
	cpu0 := make([]int64, len(exps))
	sched0 := make([]int64, len(exps))
	for i, e := range exps {
		t, err := cpuTicks(e.proc.pid())
		if err != nil {
			return nil, err
		}
		ns, err := schedNs(e.proc.pid())
		if err != nil {
			return nil, err
		}
		cpu0[i], sched0[i] = t, ns
	}
	lat := make([][]time.Duration, len(exps))
	for k := 0; k < sc.n; k++ {
		for i, e := range exps {
			d, n, ct, err := sp.scrapeType(e.url)
			if err != nil {
				return nil, fmt.Errorf("%s: scrape %d: %w", e.label, k, err)
			}
			lat[i] = append(lat[i], d)
			rows[i].bytes, rows[i].ctype = n, ct
		}
	}
	for i, e := range exps {
		t, err := cpuTicks(e.proc.pid())
		if err != nil {
			return nil, err
		}
		ns, err := schedNs(e.proc.pid())
		if err != nil {
			return nil, err
		}
		rss, hwm, err := memKiB(e.proc.pid())
		if err != nil {
			return nil, err
		}
		r := &rows[i]
		r.cpuMs = ticksToMs(t-cpu0[i]) / float64(sc.n)
		r.schedMs = float64(ns-sched0[i]) / 1e6 / float64(sc.n)
		r.rssKiB, r.hwmKiB = rss, hwm
		r.p50, r.p99 = percentile(lat[i], 0.50), percentile(lat[i], 0.99)
	}
	return rows, nil
}

// percentile is the nearest-rank percentile.
func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	k := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(k, 0)]
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func mib(kib int64) float64 { return float64(kib) / 1024 }

func printScenario(sc scenario, rows []row, o scrapeOpts) {
	format := "text"
	if o.accept != "" {
		format = "Accept: " + o.accept
	}
	if o.gzip {
		format += ", gzip"
	}
	fmt.Printf("\n== %s: %d interleaved scrapes each after %d warm-up (%s)\n", sc.title, sc.n, o.warmup, format)
	fmt.Printf("%-38s %6s %8s %7s %7s %10s %9s %7s %7s\n", "exporter", "series", "bytes", "p50_ms", "p99_ms", "cpu_ms/scr", "sched_ms", "rss_MiB", "hwm_MiB")
	for _, r := range rows {
		fmt.Printf("%-38s %6d %8d %7.2f %7.2f %10.3f %9.3f %7.1f %7.1f\n", r.label, r.series, r.bytes, ms(r.p50), ms(r.p99), r.cpuMs, r.schedMs, mib(r.rssKiB), mib(r.hwmKiB))
	}
	if o.accept != "" || o.gzip {
		for _, r := range rows {
			fmt.Printf("%s answered %s\n", r.label, r.ctype)
		}
	}
	for _, p := range sc.pairs {
		a, b := rows[p[0]], rows[p[1]]
		fmt.Printf("ratio %s / %s: p50 %.2f  p99 %.2f  cpu %.2f  rss %.2f  hwm %.2f\n", a.label, b.label,
			ms(a.p50)/ms(b.p50), ms(a.p99)/ms(b.p99), a.cpuMs/b.cpuMs, mib(a.rssKiB)/mib(b.rssKiB), mib(a.hwmKiB)/mib(b.hwmKiB))
	}
}

// printSummary prints every scenario's rows and ratios as markdown tables, for the docs.
func printSummary(scs []scenario, all [][]row) {
	fmt.Printf("\n## Summary (markdown)\n\n")
	fmt.Println("| case | exporter | series | p50 ms | p99 ms | CPU ms/scrape | (schedstat) | VmRSS MiB | VmHWM MiB |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, rows := range all {
		for _, r := range rows {
			fmt.Printf("| %s | %s | %d | %.2f | %.2f | %.2f | %.3f | %.1f | %.1f |\n", r.scenario, r.label, r.series, ms(r.p50), ms(r.p99), r.cpuMs, r.schedMs, mib(r.rssKiB), mib(r.hwmKiB))
		}
	}
	fmt.Println()
	fmt.Println("| case | ours / peer | p50 | p99 | CPU per scrape | VmRSS | VmHWM |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for i, sc := range scs {
		for _, p := range sc.pairs {
			a, b := all[i][p[0]], all[i][p[1]]
			fmt.Printf("| %s | %s / %s | %.2f | %.2f | %.2f | %.2f | %.2f |\n", sc.name, a.label, b.label,
				ms(a.p50)/ms(b.p50), ms(a.p99)/ms(b.p99), a.cpuMs/b.cpuMs, mib(a.rssKiB)/mib(b.rssKiB), mib(a.hwmKiB)/mib(b.hwmKiB))
		}
	}
}

type scrapeConfig struct {
	uwsgiPeer, nginxPeer, ours string
	workers                    []int
	scrapes, scrapes256        int
	fixedScrapes               int
	nginx, fixed               bool
	opts                       scrapeOpts
}

// runScrapes runs the scrape scenarios: uWSGI at each worker count, nginx, and the fixed cost
// of a scrape (no source, or a source that refuses connections).
func runScrapes(dir string, c scrapeConfig) error {
	var scs []scenario
	var all [][]row
	run := func(sc scenario) error {
		t0 := time.Now()
		rows, err := runScenario(dir, sc, c.opts)
		if err != nil {
			return fmt.Errorf("%s: %w", sc.title, err)
		}
		printScenario(sc, rows, c.opts)
		fmt.Printf("(%s in %.1f s)\n", sc.name, time.Since(t0).Seconds())
		scs, all = append(scs, sc), append(all, rows)
		return nil
	}
	peerLabel := "uwsgi_exporter (timonwong)"
	oursLabel := "wsgi_exporter (ours)"
	for _, w := range c.workers {
		t0 := time.Now()
		stats, up, err := startUWSGI(dir, w)
		if err != nil {
			return err
		}
		fmt.Printf("\nuWSGI with %d workers ready in %.1f s (stats socket %s)\n", w, time.Since(t0).Seconds(), filepath.Base(stats))
		n := c.scrapes
		if w >= 256 {
			n = c.scrapes256
		}
		err = run(scenario{
			name:  fmt.Sprintf("uWSGI %d workers", w),
			title: fmt.Sprintf("uWSGI %d workers, stats on a unix socket", w),
			specs: []spec{
				{label: peerLabel, bin: c.uwsgiPeer, args: []string{"--stats.uri=unix://" + stats}, up: "uwsgi_up", upWant: 1},
				{label: oursLabel, bin: c.ours, args: []string{"--uwsgi.stats-uri=unix://" + stats}, up: "uwsgi_up", upWant: 1},
			},
			pairs: [][2]int{{1, 0}},
			n:     n,
		})
		up.stop()
		if err != nil {
			return err
		}
	}
	if c.nginx {
		url, np, err := startNginx(dir)
		if err != nil {
			return err
		}
		err = run(scenario{
			name:  "nginx",
			title: "nginx stub_status over loopback TCP",
			specs: []spec{
				{label: "nginx-prometheus-exporter", bin: c.nginxPeer, args: []string{"--nginx.scrape-uri=" + url}, up: "nginx_up", upWant: 1},
				{label: oursLabel, bin: c.ours, args: []string{"--nginx.scrape-uri=" + url}, up: "nginx_up", upWant: 1},
			},
			pairs: [][2]int{{1, 0}},
			n:     c.scrapes,
		})
		np.stop()
		if err != nil {
			return err
		}
	}
	if c.fixed {
		// Nothing listens at these: a unix socket path that does not exist, a free TCP port.
		gone := filepath.Join(dir, "absent.sock")
		port, err := freePort("tcp")
		if err != nil {
			return err
		}
		refused := fmt.Sprintf("http://127.0.0.1:%d/stub_status", port)
		err = run(scenario{
			name:  "fixed cost",
			title: "fixed cost: no source, or a source that refuses the connection",
			specs: []spec{
				{label: "wsgi_exporter, no source", bin: c.ours},
				{label: "uwsgi_exporter, stats refused", bin: c.uwsgiPeer, args: []string{"--stats.uri=unix://" + gone}, up: "uwsgi_up", upWant: 0},
				{label: "wsgi_exporter, uWSGI stats refused", bin: c.ours, args: []string{"--uwsgi.stats-uri=unix://" + gone}, up: "uwsgi_up", upWant: 0},
				{label: "nginx-prometheus-exporter, refused", bin: c.nginxPeer, args: []string{"--nginx.scrape-uri=" + refused}, up: "nginx_up", upWant: 0},
				{label: "wsgi_exporter, nginx refused", bin: c.ours, args: []string{"--nginx.scrape-uri=" + refused}, up: "nginx_up", upWant: 0},
			},
			pairs: [][2]int{{0, 1}, {2, 1}, {0, 3}, {4, 3}},
			n:     c.fixedScrapes,
		})
		if err != nil {
			return err
		}
	}
	if len(scs) > 0 {
		printSummary(scs, all)
	}
	return nil
}

func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return fmt.Sprintf("%d CPUs (%s), load average %s", numCPU(), model, load)
}
