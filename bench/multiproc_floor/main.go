// Command multiproc_floor measures the physical floor of a warm multiprocess scrape: with every
// .db file of a directory mapped once (as the exporter keeps them between scrapes), the time to
// touch once every value a merge must read, walking each file's entries from the page cache,
// with the files shared among as many goroutines as the reader uses (GOMAXPROCS).
// No key is parsed, nothing is merged or written: no scrape can take less. bench/multiproc.sh
// prints it next to the exporter's warm scrape.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/wsgi-exporter/wsgi_exporter/multiproc"
)

func main() {
	dir := flag.String("dir", "", "multiprocess directory")
	n := flag.Int("n", 20, "timed passes")
	workers := flag.Int("workers", runtime.GOMAXPROCS(0), "goroutines sharing the files, as the reader's (GOMAXPROCS)")
	flag.Parse()
	names, err := filepath.Glob(filepath.Join(*dir, "*.db"))
	if err != nil || len(names) == 0 {
		fmt.Fprintln(os.Stderr, "no .db files:", err)
		os.Exit(1)
	}
	var files [][]byte
	for _, name := range names {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		st, err := f.Stat()
		if err != nil || st.Size() == 0 {
			f.Close()
			continue
		}
		data, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
		f.Close()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		files = append(files, data)
	}
	part := func(files [][]byte) (sum float64, entries int) {
		for _, data := range files {
			used, gen, err := multiproc.ParseFile(data)
			if err != nil {
				continue
			}
			entries += multiproc.Entries(data, used, gen, func(e multiproc.Entry) { sum += e.Value })
		}
		return sum, entries
	}
	// A pass splits the files among the workers, as the reader does.
	pass := func() (sum float64, entries int) {
		sums, counts := make([]float64, *workers), make([]int, *workers)
		var wg sync.WaitGroup
		for w := range *workers {
			wg.Go(func() {
				var mine [][]byte
				for i := w; i < len(files); i += *workers {
					mine = append(mine, files[i])
				}
				sums[w], counts[w] = part(mine)
			})
		}
		wg.Wait()
		for w := range *workers {
			sum += sums[w]
			entries += counts[w]
		}
		return sum, entries
	}
	_, entries := pass() // the first pass faults the pages in
	times := make([]time.Duration, *n)
	var sink float64
	cpu0 := cpuTime()
	for i := range times {
		start := time.Now()
		s, _ := pass()
		times[i] = time.Since(start)
		sink += s
	}
	cpu := (cpuTime() - cpu0) / time.Duration(*n)
	slices.Sort(times)
	fmt.Printf("floor_median_seconds %.5f floor_best_seconds %.5f floor_cpu_seconds %.5f floor_entries %d floor_files %d floor_workers %d floor_sink %g\n",
		times[len(times)/2].Seconds(), times[0].Seconds(), cpu.Seconds(), entries, len(files), *workers, sink*0)
}

// cpuTime is the user + system CPU time the process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
