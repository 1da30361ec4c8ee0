package collector

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/prometheus/common/version"

	"github.com/wsgi-exporter/wsgi_exporter/procself"
)

// SelfMetrics writes the exporter process's own metrics (process_*, go_*, the build info)
// into every answer, as client_golang's process, Go and version collectors export them
// (self_metrics.go), at a small fixed cost: one read of /proc/self/stat and of
// /proc/self/net/netstat into kept buffers, one stat of /proc/self/fd, getrlimit for the
// limits, the start time computed once, runtime/metrics read into kept samples (no
// runtime.ReadMemStats) and debug.ReadGCStats into a kept buffer. One value serves every
// Exporter of the process (Options.Self), the generations of a reloaded configuration
// included.
type SelfMetrics struct {
	mu    sync.Mutex
	proc  *procself.Reader
	build []string // wsgi_exporter_build_info's label values, in buildInfo's label order

	// What is computed once, at the first reading of /proc/self/stat: the start time (it
	// needs the boot time). startOK: the boot time was read.
	startOnce sync.Once
	start     float64
	startOK   bool

	samples []metrics.Sample // the runtime/metrics values read at every refresh
	rmIdx   []int            // index in samples of each rmGauges entry, -1: unknown to this runtime
	msIdx   [][]int          // index in samples of each memstats term, by memstats entry
	gc      debug.GCStats

	snap    selfSnapshot
	taken   time.Time
	haveAny bool
}

// selfSnapshot is one reading of the process's figures. A figure that could not be read is
// not exported, as client_golang's process collector leaves a metric out on an error.
type selfSnapshot struct {
	statOK              bool
	cpu, vsize, rss     float64
	fdsOK               bool
	fds                 float64
	limitsOK            bool
	maxFDs, maxVSize    float64
	netOK               bool
	netIn, netOut       float64
	goroutines, threads float64
	gcCount             uint64
	gcSum, lastGC       float64
	gcQ                 [5]float64
	rm                  [3]float64 // by rmGauges
	ms                  []float64  // by memstats
}

// NewSelfMetrics returns the writer of the process's own metrics.
func NewSelfMetrics() *SelfMetrics {
	s := &SelfMetrics{proc: procself.NewReader()}
	// version's values, in the sorted order of buildInfo's labels.
	s.build = []string{version.Branch, version.GoArch, version.GoOS, version.GoVersion,
		version.GetRevision(), version.GetTags(), version.Version}
	known := map[string]bool{}
	for _, d := range metrics.All() {
		known[d.Name] = true
	}
	at := map[string]int{} // index in samples by name
	add := func(name string) int {
		if !known[name] {
			return -1
		}
		if i, ok := at[name]; ok {
			return i
		}
		s.samples = append(s.samples, metrics.Sample{Name: name})
		at[name] = len(s.samples) - 1
		return len(s.samples) - 1
	}
	for _, g := range rmGauges {
		s.rmIdx = append(s.rmIdx, add(g.name))
	}
	for _, m := range memstats {
		var idx []int
		for _, n := range m.sum {
			idx = append(idx, add(n))
		}
		s.msIdx = append(s.msIdx, idx)
	}
	s.snap.ms = make([]float64, len(memstats))
	s.gc.PauseQuantiles = make([]time.Duration, len(gcQuantiles))
	return s
}

// write writes the process's own series to w (a Writer of no kind), read afresh when the last
// reading is maxAge old or older (0: always).
func (s *SelfMetrics) write(w *Writer, now time.Time, maxAge time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.haveAny || expired(s.taken, now, maxAge) {
		s.read()
		s.taken, s.haveAny = now, true
	}
	sn := &s.snap
	if sn.statOK {
		w.core(processCPU, sn.cpu)
		w.core(processVSize, sn.vsize)
		w.core(processRSS, sn.rss)
		if s.startOK {
			w.core(processStartTime, s.start)
		}
	}
	if sn.fdsOK {
		w.core(processOpenFDs, sn.fds)
	}
	if sn.limitsOK {
		w.core(processMaxFDs, sn.maxFDs)
		w.core(processMaxVSize, sn.maxVSize)
	}
	if sn.netOK {
		w.core(processNetIn, sn.netIn)
		w.core(processNetOut, sn.netOut)
	}
	w.core(goGoroutines, sn.goroutines)
	w.core(goThreads, sn.threads)
	w.summary(goGCDuration, sn.gcCount, sn.gcSum, gcQuantiles, sn.gcQ[:])
	w.core(goLastGC, sn.lastGC)
	w.core(goInfo, 1, runtime.Version())
	for i, g := range rmGauges {
		if s.rmIdx[i] >= 0 {
			w.core(g.f, sn.rm[i])
		}
	}
	for i, m := range memstats {
		w.core(m.f, sn.ms[i])
	}
	w.core(buildInfo, 1, s.build...)
}

// read takes a new reading into s.snap.
func (s *SelfMetrics) read() {
	sn := &s.snap
	st, err := s.proc.Stat()
	sn.statOK = err == nil
	if sn.statOK {
		sn.cpu, sn.vsize, sn.rss = st.CPUSeconds(), float64(st.VSize), st.ResidentBytes()
		s.startOnce.Do(func() {
			boot, err := s.proc.BootTime()
			s.start, s.startOK = float64(boot)+float64(st.StartTicks)/procself.UserHZ, err == nil
		})
	}
	fds, err := s.proc.OpenFDs()
	sn.fdsOK, sn.fds = err == nil, float64(fds)
	lim, err := procself.ReadLimits()
	sn.limitsOK, sn.maxFDs, sn.maxVSize = err == nil, float64(lim.OpenFiles), float64(lim.AddressSpace)
	ns, err := s.proc.Netstat()
	sn.netOK, sn.netIn, sn.netOut = err == nil, ns.InOctets, ns.OutOctets

	sn.goroutines = float64(runtime.NumGoroutine())
	threads, _ := runtime.ThreadCreateProfile(nil)
	sn.threads = float64(threads)
	debug.ReadGCStats(&s.gc)
	sn.gcCount, sn.gcSum = uint64(s.gc.NumGC), s.gc.PauseTotal.Seconds()
	for i, q := range s.gc.PauseQuantiles {
		sn.gcQ[i] = q.Seconds()
	}
	sn.lastGC = float64(s.gc.LastGC.UnixNano()) / 1e9

	metrics.Read(s.samples)
	for i, at := range s.rmIdx {
		if at >= 0 {
			sn.rm[i] = rmValue(s.samples[at].Value)
		}
	}
	for i, idx := range s.msIdx {
		var sum uint64
		for _, at := range idx {
			if at >= 0 && s.samples[at].Value.Kind() == metrics.KindUint64 {
				sum += s.samples[at].Value.Uint64()
			}
		}
		sn.ms[i] = float64(sum)
	}
}

// rmValue is a scalar runtime/metrics value as a float.
func rmValue(v metrics.Value) float64 {
	switch v.Kind() {
	case metrics.KindUint64:
		return float64(v.Uint64())
	case metrics.KindFloat64:
		return v.Float64()
	}
	return 0
}
