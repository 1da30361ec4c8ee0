package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

type statsdConfig struct {
	peer, ours, mapping, lines string
	rates                      []int
	duration, chunk            time.Duration
	readBuffer                 int
}

// A countable kind of gunicorn line, and the exported sample that counts it (the same name
// and labels in wsgi_exporter and in statsd_exporter with bench/statsd_mapping.yml).
type lineKey struct {
	metric string // the sample's metric name
	label  string // a label pair the sample must have, or ""
}

func (k lineKey) String() string {
	if k.label == "" {
		return k.metric
	}
	return k.metric + "{" + k.label + "}"
}

// mixLine is one datagram of the replayed mix; key < 0 for the workers gauge.
type mixLine struct {
	data    []byte
	key     int
	workers float64
}

// loadMix reads the capture's lines as gunicorn sends them without --statsd-prefix and
// --dogstatsd-tags (the default), in capture order, and classifies each.
func loadMix(path string) ([]mixLine, []lineKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	var mix []mixLine
	var keys []lineKey
	index := map[lineKey]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, "gunicorn.") || strings.Contains(l, "|#") {
			continue
		}
		name, rest, _ := strings.Cut(l, ":")
		var k lineKey
		switch {
		case name == "gunicorn.requests":
			k = lineKey{metric: "gunicorn_statsd_requests_total"}
		case name == "gunicorn.request.duration":
			k = lineKey{metric: "gunicorn_statsd_request_duration_seconds_count"}
		case strings.HasPrefix(name, "gunicorn.request.status."):
			k = lineKey{metric: "gunicorn_statsd_responses_total", label: `code="` + strings.TrimPrefix(name, "gunicorn.request.status.") + `"`}
		case strings.HasPrefix(name, "gunicorn.log."):
			k = lineKey{metric: "gunicorn_statsd_log_messages_total", label: `level="` + strings.TrimPrefix(name, "gunicorn.log.") + `"`}
		case name == "gunicorn.workers":
			v, _, _ := strings.Cut(rest, "|")
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %q: %w", path, l, err)
			}
			mix = append(mix, mixLine{data: []byte(l), key: -1, workers: n})
			continue
		default:
			return nil, nil, fmt.Errorf("%s: a line of unknown kind: %q", path, l)
		}
		i, ok := index[k]
		if !ok {
			i = len(keys)
			index[k] = i
			keys = append(keys, k)
		}
		mix = append(mix, mixLine{data: []byte(l), key: i})
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	if len(mix) == 0 {
		return nil, nil, fmt.Errorf("%s: no unprefixed gunicorn lines", path)
	}
	return mix, keys, nil
}

// statsdTarget is one exporter receiving the mix, and what it was sent.
type statsdTarget struct {
	*exporter
	udpPort     int
	conn        *net.UDPConn
	pos         int     // next line of the mix
	sent        []int64 // per key
	lines       int64   // datagrams sent
	writeErrs   int64
	lastWorkers float64
	sending     time.Duration
}

// send sends the mix to t at rate lines/s for d, pacing by the clock (bursts of at most a few
// hundred datagrams, sleeping in between), and returns the lines sent.
func (t *statsdTarget) send(mix []mixLine, rate int, d time.Duration) {
	t0 := time.Now()
	var n int64
	for {
		el := time.Since(t0)
		if el >= d {
			break
		}
		due := int64(el.Seconds()*float64(rate)) - n
		if due <= 0 {
			time.Sleep(200 * time.Microsecond)
			continue
		}
		for ; due > 0; due-- {
			l := mix[t.pos]
			t.pos = (t.pos + 1) % len(mix)
			n++
			if _, err := t.conn.Write(l.data); err != nil {
				t.writeErrs++
				continue
			}
			t.lines++
			if l.key >= 0 {
				t.sent[l.key]++
			} else {
				t.lastWorkers = l.workers
			}
		}
	}
	t.sending += time.Since(t0)
}

func startStatsdExporter(dir, label, bin string, args func(udpPort int) []string) (*statsdTarget, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort("udp")
		if err != nil {
			return nil, err
		}
		e, err := startExporter(dir, label, bin, args(port))
		if err != nil {
			lastErr = err
			continue
		}
		if _, ok, err := udpSocketByPort(port); err != nil || !ok {
			e.proc.stop()
			lastErr = fmt.Errorf("%s: no UDP socket on 127.0.0.1:%d (%v): %s", label, port, err, e.proc.logTail())
			continue
		}
		c, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			e.proc.stop()
			return nil, err
		}
		return &statsdTarget{exporter: e, udpPort: port, conn: c}, nil
	}
	return nil, lastErr
}

// runStatsd sends the same gunicorn line mix to statsd_exporter and to wsgi_exporter at each
// rate, in turns, then checks every count against what was sent and reports CPU per line.
func runStatsd(dir string, c statsdConfig) error {
	mix, keys, err := loadMix(c.lines)
	if err != nil {
		return err
	}
	fmt.Printf("line mix: %d datagrams from %s, replayed in order\n", len(mix), c.lines)
	if b, err := os.ReadFile("/proc/sys/net/core/rmem_max"); err == nil {
		fmt.Printf("net.core.rmem_max = %s (caps both exporters' receive buffers)\n", strings.TrimSpace(string(b)))
	}
	type result struct {
		rate                                        int
		label                                       string
		lines, drops, expected, counted, miscounted int64
		achieved, cpuMs                             float64
		rssKiB, hwmKiB                              int64
		verdict                                     string
	}
	var results []result
	for _, rate := range c.rates {
		peer, err := startStatsdExporter(dir, "statsd_exporter", c.peer, func(p int) []string {
			return []string{fmt.Sprintf("--statsd.listen-udp=127.0.0.1:%d", p), "--statsd.listen-tcp=",
				"--statsd.mapping-config=" + c.mapping, fmt.Sprintf("--statsd.read-buffer=%d", c.readBuffer)}
		})
		if err != nil {
			return err
		}
		ours, err := startStatsdExporter(dir, "wsgi_exporter", c.ours, func(p int) []string {
			return []string{fmt.Sprintf("--gunicorn.statsd-listen-address=127.0.0.1:%d", p)}
		})
		if err != nil {
			peer.proc.stop()
			return err
		}
		ts := []*statsdTarget{peer, ours}
		stopBoth := func() {
			for _, t := range ts {
				t.conn.Close()
				t.proc.stop()
			}
		}
		cpu0 := make([]int64, len(ts))
		drops0 := make([]int64, len(ts))
		for i, t := range ts {
			t.sent = make([]int64, len(keys))
			if cpu0[i], err = cpuTicks(t.proc.pid()); err != nil {
				stopBoth()
				return err
			}
			s, _, _ := udpSocketByPort(t.udpPort)
			drops0[i] = s.drops
		}
		chunks := max(int(c.duration/c.chunk), 1)
		for k := 0; k < chunks; k++ {
			for _, t := range ts {
				t.send(mix, rate, c.chunk)
			}
		}
		// Let both drain their socket buffers and statsd_exporter flush its event queue
		// (every 200 ms), then read CPU time before scraping.
		deadline := time.Now().Add(30 * time.Second)
		for _, t := range ts {
			for {
				s, ok, err := udpSocketByPort(t.udpPort)
				if err != nil || !ok || s.rxQueue == 0 || time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		time.Sleep(time.Second)
		for i, t := range ts {
			cpu1, err := cpuTicks(t.proc.pid())
			if err != nil {
				stopBoth()
				return err
			}
			rss, hwm, _ := memKiB(t.proc.pid())
			s, _, _ := udpSocketByPort(t.udpPort)
			body, err := text(t.url)
			if err != nil {
				stopBoth()
				return fmt.Errorf("%s: %w", t.label, err)
			}
			r := result{rate: rate, label: t.label, lines: t.lines, drops: s.drops - drops0[i],
				achieved: float64(t.lines) / t.sending.Seconds(), cpuMs: ticksToMs(cpu1 - cpu0[i]), rssKiB: rss, hwmKiB: hwm}
			var detail []string
			for j, k := range keys {
				var got float64
				if k.label == "" {
					got, _ = sum(body, k.metric)
				} else {
					got, _ = sum(body, k.metric, k.label)
				}
				r.expected += t.sent[j]
				r.counted += int64(got)
				if d := t.sent[j] - int64(got); d != 0 {
					r.miscounted += abs(d)
					detail = append(detail, fmt.Sprintf("%s sent %d counted %v", k, t.sent[j], got))
				}
			}
			w, n := sum(body, "gunicorn_statsd_workers")
			if r.drops == 0 && (n != 1 || w != t.lastWorkers) {
				detail = append(detail, fmt.Sprintf("gunicorn_statsd_workers %v (%d samples), last sent %v", w, n, t.lastWorkers))
				r.miscounted++
			}
			switch {
			case r.miscounted == 0:
				r.verdict = "exact"
			case r.drops > 0 && r.counted <= r.expected && r.expected-r.counted <= r.drops:
				r.verdict = fmt.Sprintf("%d lines short, within the kernel's %d drops", r.expected-r.counted, r.drops)
			default:
				sort.Strings(detail)
				r.verdict = "MISCOUNTED: " + strings.Join(detail, "; ")
			}
			if t.writeErrs > 0 {
				r.verdict += fmt.Sprintf(" (%d sends failed)", t.writeErrs)
			}
			results = append(results, r)
		}
		stopBoth()
		res := results[len(results)-2:]
		fmt.Printf("\n== %d lines/s, %v to each exporter in turns of %v\n", rate, time.Duration(chunks)*c.chunk, c.chunk)
		fmt.Printf("%-16s %9s %10s %7s %9s %9s %11s %12s %8s %8s  %s\n", "exporter", "lines", "achieved/s", "drops", "counted", "cpu_ms", "cpu_us/line", "lines/s/core", "rss_MiB", "hwm_MiB", "check")
		for _, r := range res {
			recv := float64(r.lines - r.drops)
			fmt.Printf("%-16s %9d %10.0f %7d %9d %9.0f %11.2f %12.0f %8.1f %8.1f  %s\n", r.label, r.lines, r.achieved, r.drops, r.counted,
				r.cpuMs, r.cpuMs*1000/recv, recv/(r.cpuMs/1000), mib(r.rssKiB), mib(r.hwmKiB), r.verdict)
		}
		a, b := res[1], res[0]
		fmt.Printf("ratio wsgi_exporter / statsd_exporter: cpu per line %.2f (lines/s per core %.2fx)\n",
			(a.cpuMs/float64(a.lines-a.drops))/(b.cpuMs/float64(b.lines-b.drops)), (b.cpuMs/float64(b.lines-b.drops))/(a.cpuMs/float64(a.lines-a.drops)))
	}
	fmt.Printf("\n## Summary (markdown)\n\n")
	fmt.Println("| rate lines/s | exporter | lines | kernel drops | check | CPU µs/line | lines/s per core | VmRSS MiB | VmHWM MiB |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		recv := float64(r.lines - r.drops)
		fmt.Printf("| %d | %s | %d | %d | %s | %.2f | %.0f | %.1f | %.1f |\n", r.rate, r.label, r.lines, r.drops, r.verdict, r.cpuMs*1000/recv, recv/(r.cpuMs/1000), mib(r.rssKiB), mib(r.hwmKiB))
	}
	fmt.Println()
	fmt.Println("| rate lines/s | CPU per line, ours / statsd_exporter | lines/s per core, ours / statsd_exporter |")
	fmt.Println("|---|---|---|")
	for i := 0; i+1 < len(results); i += 2 {
		b, a := results[i], results[i+1]
		pa, pb := a.cpuMs/float64(a.lines-a.drops), b.cpuMs/float64(b.lines-b.drops)
		fmt.Printf("| %d | %.2f | %.2fx |\n", a.rate, pa/pb, pb/pa)
	}
	return nil
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
