// Command multiproc_bench times wsgi_exporter's scrape of a prometheus_client multiprocess
// directory: read, merge, and encode in the text format, as /metrics does. bench/multiproc.sh
// runs it next to Python's MultiProcessCollector on the same directory.
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/wsgi-exporter/wsgi_exporter/collector"
	"github.com/wsgi-exporter/wsgi_exporter/multiproc"
)

// answer is a ResponseWriter that sends the body to w.
type answer struct {
	w    io.Writer
	h    http.Header
	code int
}

func (a *answer) Header() http.Header { return a.h }
func (a *answer) WriteHeader(c int)   { a.code = c }
func (a *answer) Write(b []byte) (int, error) {
	if a.code == 0 {
		a.code = http.StatusOK
	}
	return a.w.Write(b)
}

// scrape serves one text /metrics answer of the exporter to w.
func scrape(h http.Handler, w io.Writer) error {
	req, err := http.NewRequest(http.MethodGet, "/metrics", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	a := &answer{w: w, h: http.Header{}}
	h.ServeHTTP(a, req)
	if a.code != http.StatusOK {
		return fmt.Errorf("status %d", a.code)
	}
	return nil
}

type countWriter struct{ n int }

func (c *countWriter) Write(b []byte) (int, error) { c.n += len(b); return len(b), nil }

// status returns a field of /proc/self/status in bytes (VmHWM, RssAnon, RssFile).
func status(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
			return kb * 1024
		}
	}
	return -1
}

func main() {
	dir := flag.String("dir", "", "multiprocess directory")
	n := flag.Int("n", 20, "timed scrapes")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the timed scrapes here")
	memprofile := flag.String("memprofile", "", "write an allocation profile after the timed scrapes here")
	procfs := flag.String("procfs", "", "procfs where writers' pids are looked up (as --path.procfs; empty: no liveness check, and no store)")
	noStore := flag.Bool("no-store", false, "read dead writers' files at every scrape (as --no-multiproc.store)")
	coldProfile := flag.String("coldprofile", "", "write a CPU profile of the first (cold) scrape here")
	recheck := flag.Duration("recheck-interval", 0, "as --multiproc.recheck-interval (1ns: every scrape a recheck)")
	churn := flag.Bool("churn", false, "create and remove a file in the directory before each timed scrape (untimed), so that every scrape lists it again")
	flag.Parse()
	src, err := collector.NewMultiproc(collector.Config{Address: *dir, Timeout: time.Minute},
		collector.MultiprocOptions{Options: multiproc.Options{ProcRoot: *procfs, NoStore: *noStore, RecheckInterval: *recheck}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	exp, err := collector.New([]collector.Source{src}, collector.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	h := exp.Handler()
	if *coldProfile != "" {
		startCPUProfile(*coldProfile)
	}
	start := time.Now()
	var cw countWriter
	err = scrape(h, &cw)
	first := time.Since(start)
	if *coldProfile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *cpuprofile != "" {
		startCPUProfile(*cpuprofile)
		defer pprof.StopCPUProfile()
	}
	var times []time.Duration
	var peakAnon int64
	cpu0 := cpuTime()
	for i := 0; i < *n; i++ {
		if *churn {
			p := filepath.Join(*dir, fmt.Sprintf(".churn-%d", i))
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			_ = os.Remove(p)
		}
		start := time.Now()
		if err := scrape(h, io.Discard); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		times = append(times, time.Since(start))
		peakAnon = max(peakAnon, status("RssAnon"))
	}
	cpu := (cpuTime() - cpu0) / time.Duration(*n)
	if *memprofile != "" {
		if f, err := os.Create(*memprofile); err == nil {
			_ = pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}
	}
	slices.Sort(times)
	fmt.Printf("go_first_seconds %.4f go_median_seconds %.4f go_best_seconds %.4f go_cpu_seconds %.4f exposition_bytes %d peak_rss_bytes %d peak_anon_bytes %d rss_file_bytes %d rss_bytes %d anon_bytes %d gomaxprocs %d\n",
		first.Seconds(), times[len(times)/2].Seconds(), times[0].Seconds(), cpu.Seconds(), cw.n, status("VmHWM"), peakAnon, status("RssFile"), status("VmRSS"), status("RssAnon"), runtime.GOMAXPROCS(0))
}

// cpuTime is the user + system CPU time the process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startCPUProfile starts a CPU profile into path, or exits.
func startCPUProfile(path string) {
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
