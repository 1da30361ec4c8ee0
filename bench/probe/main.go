// Command probe measures wsgi_exporter's /probe (issue 12), with the built binary:
//
//	concurrency: W workers probe a mix of live, dead and hung fake uWSGI stats servers for a
//	             while; every answer is checked (up, the target's own version, the failure
//	             reason) and timed against the scrape timeout it announced. -peer runs the same
//	             mix against timonwong/uwsgi_exporter's /probe, side by side.
//	fanout:      N fake stats servers on loopback unix sockets serving the captured documents
//	             of fixtures/uwsgi/, each probed every interval (spread evenly): CPU per probe
//	             and cores used by the exporter.
//
// Run from the repository root: see bench/probe.sh and docs/benchmarks.md. Only the processes
// this program starts are ever signalled, by pid.
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	mode := flag.String("mode", "concurrency", "concurrency or fanout")
	ours := flag.String("ours", "", "path of the wsgi_exporter binary")
	peer := flag.String("peer", "", "concurrency: path of timonwong/uwsgi_exporter, run with the same mix (optional)")
	duration := flag.Duration("duration", time.Minute, "how long to measure")
	workers := flag.Int("workers", 64, "concurrency: probes at once")
	live := flag.Int("live", 24, "concurrency: live targets")
	dead := flag.Int("dead", 20, "concurrency: dead targets (connection refused)")
	hung := flag.Int("hung", 20, "concurrency: hung targets (accept, never answer)")
	timeout := flag.Float64("timeout", 2, "the scrape timeout each probe announces, in seconds")
	targets := flag.Int("targets", 1000, "fanout: stats servers")
	interval := flag.Duration("interval", 15*time.Second, "fanout: how often each target is probed")
	fixtures := flag.String("fixtures", "fixtures/uwsgi", "directory of the captured stats documents")
	extra := flag.String("ours-args", "", "more arguments for wsgi_exporter, space-separated (e.g. --web.enable-pprof)")
	flag.Parse()
	oursArgs = strings.Fields(*extra)
	if *ours == "" {
		fmt.Fprintln(os.Stderr, "-ours is required")
		os.Exit(2)
	}
	dir, err := os.MkdirTemp("", "wsgi-probe-bench-")
	check(err)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var code int
	switch *mode {
	case "concurrency":
		code = concurrency(ctx, dir, *ours, *peer, *fixtures, *duration, *workers, *live, *dead, *hung, *timeout)
	case "fanout":
		code = fanout(ctx, dir, *ours, *fixtures, *duration, *targets, *interval, *timeout)
	default:
		fmt.Fprintln(os.Stderr, "-mode must be concurrency or fanout")
		code = 2
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

var oursArgs []string

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// machine describes where the figures come from.
func machine() string {
	load, _ := os.ReadFile("/proc/loadavg")
	out := fmt.Sprintf("%s, %d CPUs, load average %s", runtime.Version(), runtime.NumCPU(), strings.Join(strings.Fields(string(load))[:3], " "))
	// CPU pressure: the share of time some runnable task waited for a CPU (other work on
	// the machine delays the answers, whatever the exporter does).
	if psi, err := os.ReadFile("/proc/pressure/cpu"); err == nil {
		if f := strings.Fields(string(psi)); len(f) > 2 && f[0] == "some" {
			out += ", CPU pressure " + strings.TrimPrefix(f[2], "avg60=") + "% (60 s)"
		}
	}
	return out
}

// raiseNoFile lifts the open-file limit to its hard maximum (inherited by the exporter).
func raiseNoFile() {
	var r syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) == nil && r.Cur < r.Max {
		r.Cur = r.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
	}
}

// docs reads the captured stats documents.
func docs(dir string) [][]byte {
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	check(err)
	if len(paths) == 0 {
		check(fmt.Errorf("no *.json in %s (run from the repository root)", dir))
	}
	slices.Sort(paths)
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		check(err)
		out = append(out, b)
	}
	return out
}

// result is one probe's outcome.
type result struct {
	kind    string
	latency time.Duration
	wrong   string // why the answer is wrong; "" when right
	late    bool   // answered after the timeout it announced
	// timedOut: a live target reported down because it did not answer within the probe's
	// deadline (the machine was too busy): not a wrong answer, counted apart.
	timedOut bool
}

// client has enough connections for every worker.
var client = &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024}}

// probeOnce sends one probe and checks the answer against the target.
func probeOnce(ctx context.Context, base string, ours bool, s *statsServer, timeout float64) result {
	q := url.Values{"target": {s.addr}}
	if ours {
		q.Set("module", "uwsgi")
	} else if !strings.HasPrefix(s.addr, "unix://") {
		q.Set("target", "tcp://"+s.addr) // the peer's /probe takes only URIs
	}
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/probe?"+q.Encode(), nil)
	if err != nil {
		return result{kind: s.kind, wrong: err.Error()}
	}
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", fmt.Sprint(timeout))
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return result{kind: s.kind, wrong: "request: " + err.Error(), latency: time.Since(start)}
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	r := result{kind: s.kind, latency: time.Since(start)}
	r.late = r.latency > time.Duration(timeout*float64(time.Second))
	if err != nil || resp.StatusCode != 200 {
		r.wrong = fmt.Sprintf("status %d %v", resp.StatusCode, err)
		return r
	}
	up, version, reason := parseAnswer(body)
	// The peer gives no reason: a down answer after the deadline (timeout less the 0.5 s
	// offset both use) counts as a timeout.
	deadline := time.Duration((timeout - 0.5) * float64(time.Second))
	switch {
	case s.kind == "live" && up == "0" && (reason == "timeout" || (!ours && r.latency >= deadline)):
		r.timedOut = true
	case s.kind == "live" && up != "1":
		r.wrong = fmt.Sprintf("live target up %s (reason %s, after %v)", up, reason, r.latency.Round(time.Millisecond))
	case s.kind != "live" && up != "0":
		r.wrong = s.kind + " target up " + up
	case ours && s.kind == "live" && version != s.version:
		r.wrong = fmt.Sprintf("version %q, want %q (another target's answer)", version, s.version)
	case ours && s.kind == "dead" && reason != "connect":
		r.wrong = "dead target reason " + reason
	case ours && s.kind == "hung" && reason != "timeout":
		r.wrong = "hung target reason " + reason
	}
	return r
}

// parseAnswer finds uwsgi_up, the version of uwsgi_version_info and the failure reason of
// wsgi_exporter_probe_failed in a text exposition.
func parseAnswer(body []byte) (up, version, reason string) {
	up = "missing"
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "uwsgi_up"):
			up = line[strings.LastIndexByte(line, ' ')+1:]
		case strings.HasPrefix(line, "uwsgi_version_info{"):
			if _, v, ok := strings.Cut(line, `version="`); ok {
				version, _, _ = strings.Cut(v, `"`)
			}
		case strings.HasPrefix(line, "wsgi_exporter_probe_failed{") && strings.HasSuffix(line, " 1"):
			_, v, _ := strings.Cut(line, `reason="`)
			reason, _, _ = strings.Cut(v, `"`)
		}
	}
	return up, version, reason
}

// stats summarises results by kind.
type stats struct {
	n, wrong, late, timedOut int
	lat                      []time.Duration
	examples                 []string
}

func summarise(rs []result) map[string]*stats {
	out := map[string]*stats{"all": {}}
	for _, r := range rs {
		for _, k := range []string{r.kind, "all"} {
			st := out[k]
			if st == nil {
				st = &stats{}
				out[k] = st
			}
			st.n++
			st.lat = append(st.lat, r.latency)
			if r.wrong != "" {
				st.wrong++
				if len(st.examples) < 3 {
					st.examples = append(st.examples, r.wrong)
				}
			}
			if r.late {
				st.late++
			}
			if r.timedOut {
				st.timedOut++
			}
		}
	}
	return out
}

// pct is the nearest-rank percentile.
func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }

func concurrency(ctx context.Context, dir, ours, peer, fixtures string, duration time.Duration, workers, nLive, nDead, nHung int, timeout float64) int {
	raiseNoFile()
	doc := docs(fixtures)[0]
	var lives, deads, hungs []*statsServer
	defer func() {
		for _, s := range slices.Concat(lives, deads, hungs) {
			s.close()
		}
	}()
	for i := range nLive {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		check(err)
		s := serveLive(l, doc, fmt.Sprintf("2.0.21-live%d", i))
		s.addr = l.Addr().String()
		lives = append(lives, s)
	}
	for range nDead {
		a, err := deadTCP()
		check(err)
		deads = append(deads, &statsServer{kind: "dead", addr: a})
	}
	for range nHung {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		check(err)
		s := serveHung(l)
		s.addr = l.Addr().String()
		hungs = append(hungs, s)
	}
	// Interleave the kinds, so that at any moment the workers probe a mix.
	var servers []*statsServer
	for i := 0; i < max(nLive, nDead, nHung); i++ {
		for _, list := range [][]*statsServer{lives, deads, hungs} {
			if i < len(list) {
				servers = append(servers, list[i])
			}
		}
	}
	cfg := filepath.Join(dir, "wsgi.yml")
	check(os.WriteFile(cfg, []byte("modules:\n  uwsgi:\n    kind: uwsgi\n    allow: {addresses: [\"127.0.0.1\"]}\n"), 0o600))

	fmt.Printf("## /probe under concurrency: %d workers, %d live / %d dead / %d hung targets, %v each, timeout %gs announced\n\n",
		workers, nLive, nDead, nHung, duration, timeout)
	fmt.Printf("%s\n\n", machine())
	fmt.Println("| exporter | kind | probes | wrong | late | live timed out | p50 ms | p99 ms | max ms |")
	fmt.Println("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	type run struct {
		name, bin string
		args      []string
		ours      bool
	}
	runs := []run{{"wsgi_exporter", ours, append([]string{"--config.file=" + cfg, "--log.level=warn", fmt.Sprintf("--probe.max-concurrent=%d", workers)}, oursArgs...), true}}
	if peer != "" {
		runs = append(runs, run{"uwsgi_exporter (peer)", peer, []string{"--log.level=warn"}, false})
	}
	failed := 0
	var notes []string
	for _, r := range runs {
		x, err := startExporter(strings.Fields(r.name)[0], r.bin, dir, r.args...)
		check(err)
		fmt.Fprintf(os.Stderr, "%s at %s (pid %d)\n", r.name, x.url, x.cmd.Process.Pid)
		cpu0, _ := x.cpuSeconds()
		start := time.Now()
		var mu sync.Mutex
		var rs []result
		var wg sync.WaitGroup
		runCtx, cancel := context.WithTimeout(ctx, duration)
		for w := range workers {
			wg.Go(func() {
				var mine []result
				for k := w; runCtx.Err() == nil; k++ {
					res := probeOnce(ctx, x.url, r.ours, servers[k%len(servers)], timeout)
					mine = append(mine, res)
				}
				mu.Lock()
				rs = append(rs, mine...)
				mu.Unlock()
			})
		}
		wg.Wait()
		cancel()
		wall := time.Since(start)
		cpu1, _ := x.cpuSeconds()
		rss, hwm := x.rssMiB()
		x.stop()
		sum := summarise(rs)
		for _, k := range []string{"live", "dead", "hung", "all"} {
			st := sum[k]
			if st == nil {
				continue
			}
			fmt.Printf("| %s | %s | %d | %d | %d | %d | %s | %s | %s |\n", r.name, k, st.n, st.wrong, st.late, st.timedOut, ms(pct(st.lat, 50)), ms(pct(st.lat, 99)), ms(pct(st.lat, 100)))
		}
		all := sum["all"]
		notes = append(notes, fmt.Sprintf("%s: %.0f probes/s, CPU %.2f ms per probe (%.2f cores), VmRSS %.0f MiB, VmHWM %.0f MiB",
			r.name, float64(all.n)/wall.Seconds(), (cpu1-cpu0)*1000/float64(all.n), (cpu1-cpu0)/wall.Seconds(), rss, hwm))
		for _, k := range []string{"live", "dead", "hung"} {
			if st := sum[k]; st != nil && len(st.examples) > 0 {
				notes = append(notes, fmt.Sprintf("%s, wrong %s answers, e.g.: %s", r.name, k, strings.Join(st.examples, "; ")))
			}
		}
		if r.ours && (all.wrong > 0 || all.late > 0) {
			failed = 1
		}
	}
	fmt.Println()
	for _, n := range notes {
		fmt.Println("- " + n)
	}
	return failed
}

func fanout(ctx context.Context, dir, ours, fixtures string, duration time.Duration, n int, interval time.Duration, timeout float64) int {
	raiseNoFile()
	ds := docs(fixtures)
	socks := filepath.Join(dir, "socks")
	check(os.Mkdir(socks, 0o755))
	servers := make([]*statsServer, n)
	for i := range n {
		p := filepath.Join(socks, fmt.Sprintf("app%04d.sock", i))
		l, err := net.Listen("unix", p)
		check(err)
		servers[i] = serveLive(l, ds[i%len(ds)], "2.0.21-debian")
		servers[i].version = "2.0.21-debian"
		servers[i].addr = "unix://" + p
	}
	defer func() {
		for _, s := range servers {
			s.close()
		}
	}()
	cfg := filepath.Join(dir, "wsgi.yml")
	check(os.WriteFile(cfg, []byte(fmt.Sprintf("modules:\n  uwsgi:\n    kind: uwsgi\n    allow: {unix_sockets: [%s]}\n", socks)), 0o600))
	x, err := startExporter("wsgi_exporter", ours, dir, append([]string{"--config.file=" + cfg, "--log.level=warn"}, oursArgs...)...)
	check(err)
	defer x.stop()

	fmt.Printf("## /probe fan-out: %d targets (fake stats servers on unix sockets, %d captured documents of %s), each probed every %v\n\n",
		n, len(ds), fixtures, interval)
	fmt.Printf("%s\n\n", machine())
	// One probe every interval/n, in target order: each target every interval. A pool of
	// senders keeps the schedule when a probe is slow.
	step := interval / time.Duration(n)
	jobs := make(chan int, n)
	var mu sync.Mutex
	var rs []result
	var measuring atomic.Bool
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for i := range jobs {
				r := probeOnce(ctx, x.url, true, servers[i], timeout)
				if measuring.Load() {
					mu.Lock()
					rs = append(rs, r)
					mu.Unlock()
				}
			}
		})
	}
	schedule := func(d time.Duration, from int) int {
		start := time.Now()
		k := from
		for ctx.Err() == nil {
			at := start.Add(time.Duration(k-from) * step)
			if at.Sub(start) >= d {
				break
			}
			time.Sleep(time.Until(at))
			jobs <- k % n
			k++
		}
		return k
	}
	// A first round warms up (connections, buffers), then the measured window.
	k := schedule(interval, 0)
	measuring.Store(true)
	cpu0, _ := x.cpuSeconds()
	start := time.Now()
	schedule(duration, k)
	close(jobs)
	wg.Wait()
	wall := time.Since(start)
	cpu1, _ := x.cpuSeconds()
	rss, hwm := x.rssMiB()
	sum := summarise(rs)["all"]
	cpu := cpu1 - cpu0
	fmt.Println("| probes | wrong | late | timed out | probes/s | p50 ms | p99 ms | exporter CPU s | CPU ms/probe | cores used | VmRSS MiB | VmHWM MiB |")
	fmt.Println("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	fmt.Printf("| %d | %d | %d | %d | %.1f | %s | %s | %.2f | %.3f | %.4f | %.0f | %.0f |\n", sum.n, sum.wrong, sum.late, sum.timedOut,
		float64(sum.n)/wall.Seconds(), ms(pct(sum.lat, 50)), ms(pct(sum.lat, 99)), cpu, cpu*1000/float64(sum.n), cpu/wall.Seconds(), rss, hwm)
	if len(sum.examples) > 0 {
		fmt.Println("\n- wrong answers, e.g.: " + strings.Join(sum.examples, "; "))
	}
	if sum.wrong > 0 {
		return 1
	}
	return 0
}
