package collector

import (
	"context"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsgi-exporter/wsgi_exporter/gunicorn"
	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// GunicornKind is a gunicorn master found through its pidfile and read from /proc.
var GunicornKind = Kind{Name: "gunicorn", SourceLabel: "pidfile", Title: "gunicorn master (pidfile and /proc)"}

var (
	gpLabel  = []string{"pidfile"}
	gpSlot   = []string{"pidfile", "slot"}
	gpMaster = prometheus.NewDesc("gunicorn_master_info", "The gunicorn master process read through the pidfile (1); pid is its process id.",
		[]string{"pidfile", "pid"}, nil)
	gpMasterStart = prometheus.NewDesc("gunicorn_master_start_time_seconds", "Start time of the gunicorn master since the unix epoch.", gpLabel, nil)
	gpMasterCPU   = prometheus.NewDesc("gunicorn_master_cpu_seconds_total", "User and system CPU time the gunicorn master used.", gpLabel, nil)
	gpMasterRSS   = prometheus.NewDesc("gunicorn_master_resident_memory_bytes", "Resident memory of the gunicorn master.", gpLabel, nil)
	gpWorkers     = prometheus.NewDesc("gunicorn_workers", "Worker processes of the master (its children) at this scrape.", gpLabel, nil)
	gpStarted     = prometheus.NewDesc("gunicorn_workers_started_total",
		"Workers that appeared since the exporter first saw this master, after its initial spawn: replacements after a crash, kill, timeout or max_requests, and workers added by TTIN. A worker born and gone between two scrapes is not seen.", gpLabel, nil)
	gpWorkerInfo = prometheus.NewDesc("gunicorn_worker_info", "A worker in a slot (1); pid is its current process id. A new worker takes the lowest free slot.",
		[]string{"pidfile", "slot", "pid"}, nil)
	gpWorkerRSS   = prometheus.NewDesc("gunicorn_worker_resident_memory_bytes", "Resident memory of a worker; summed over workers it counts shared pages once per worker.", gpSlot, nil)
	gpWorkerPSS   = prometheus.NewDesc("gunicorn_worker_proportional_memory_bytes", "Proportional set size (Pss of /proc/<pid>/smaps_rollup) of a worker: shared pages divided among their sharers, so it sums to the real total.", gpSlot, nil)
	gpWorkerCPU   = prometheus.NewDesc("gunicorn_worker_cpu_seconds_total", "User and system CPU time of the worker in the slot; resets when a new worker takes the slot.", gpSlot, nil)
	gpWorkerStart = prometheus.NewDesc("gunicorn_worker_start_time_seconds", "Start time of the worker in the slot since the unix epoch.", gpSlot, nil)
	gpWorkerBeat  = prometheus.NewDesc("gunicorn_worker_heartbeat_age_seconds",
		"Seconds since the worker last touched its heartbeat file, the signal gunicorn's --timeout acts on. An idle sync worker touches it every timeout/2; a worker stuck in a request does not.", gpSlot, nil)
)

// GunicornProcSource reads one gunicorn master and its workers through a pidfile.
type GunicornProcSource struct {
	cfg    Config
	reader GunicornProcReader
	now    func() float64 // unix seconds

	// sem: one scrape at a time, so the slot and restart state follow the reads in order. A
	// one-slot channel rather than a mutex: a scrape queued behind a stuck one (abandoned by
	// the collector at its deadline) gives up at its own deadline instead of blocking forever.
	sem       chan struct{}
	masterPID int
	slots     slotTracker
	started   float64
	initial   initialBurst
}

// spawnGap is the longest pause between two forks of gunicorn's initial spawn loop (it
// sleeps up to 0.1 s between forks); a worker started later than that after the previous
// one is a replacement or a TTIN addition.
const spawnGap = 1.0

// startSlack is how much earlier than the wall clock a start time read from /proc can look:
// start times are the kernel's boot time, which /proc/stat gives in whole seconds, plus the
// process' start in ticks. Closing the burst on the wall clock waits this much longer.
const startSlack = 1.0

// initialBurst recognises a master's first generation of workers, which it forks one by one
// after it starts: a scrape in the middle of that loop must not count the rest as restarts.
type initialBurst struct {
	end    float64 // start time of the last worker of the burst
	closed bool
}

// update extends the burst with workers started within spawnGap of its end, in start order,
// and closes it once a later worker exists or the gap has passed.
func (b *initialBurst) update(workers []gunicorn.Worker, now float64) {
	if b.closed {
		return
	}
	starts := make([]float64, len(workers))
	for i, w := range workers {
		starts[i] = w.StartTime
	}
	sort.Float64s(starts)
	for _, st := range starts {
		switch {
		case b.end == 0 || st <= b.end:
			b.end = max(b.end, st)
		case st <= b.end+spawnGap:
			b.end = st
		default:
			b.closed = true
			return
		}
	}
	if b.end != 0 && now > b.end+spawnGap+startSlack {
		b.closed = true
	}
}

// GunicornProcReader reads a master and its workers; *gunicorn.ProcReader is the real one.
type GunicornProcReader interface {
	Read(ctx context.Context, pidfile string) (*gunicorn.Master, error)
}

// NewGunicornProcSource returns a source for the pidfile in cfg.Address.
func NewGunicornProcSource(cfg Config, reader GunicornProcReader) *GunicornProcSource {
	return &GunicornProcSource{cfg: cfg, reader: reader, sem: make(chan struct{}, 1), now: func() float64 { return float64(time.Now().UnixNano()) / 1e9 }}
}

// Kind implements Source.
func (s *GunicornProcSource) Kind() Kind { return GunicornKind }

// Config implements Source.
func (s *GunicornProcSource) Config() Config { return s.cfg }

type gunicornWorkerRow struct {
	slot string
	w    gunicorn.Worker
}

// Scrape implements Source.
func (s *GunicornProcSource) Scrape(ctx context.Context) (Emit, error) {
	if ctx.Err() != nil {
		return nil, fetch.Errorf(fetch.ReasonTimeout, "before reading the master: %w", ctx.Err())
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fetch.Errorf(fetch.ReasonTimeout, "waiting for the previous scrape (still reading /proc): %w", ctx.Err())
	}
	defer func() { <-s.sem }()
	m, err := s.reader.Read(ctx, s.cfg.Address)
	if err != nil {
		return nil, err
	}
	pids := make([]int, len(m.Workers))
	for i, w := range m.Workers {
		pids[i] = w.PID
	}
	if m.PID != s.masterPID {
		// A new master (first scrape, a restart, or a promoted USR2 master): its workers are
		// the baseline, not restarts.
		s.slots.reset()
		s.masterPID = m.PID
		s.initial = initialBurst{}
		s.initial.update(m.Workers, s.now())
		s.slots.assign(pids)
	}
	s.initial.update(m.Workers, s.now())
	slots, fresh := s.slots.assign(pids)
	for _, w := range m.Workers {
		if fresh[w.PID] && w.StartTime > s.initial.end {
			s.started++
		}
	}
	started := s.started
	rows := make([]gunicornWorkerRow, len(m.Workers))
	for i, w := range m.Workers {
		rows[i] = gunicornWorkerRow{slot: strconv.Itoa(slots[w.PID]), w: w}
	}
	name := s.cfg.SourceName()
	return func(ch chan<- prometheus.Metric) {
		g := func(d *prometheus.Desc, t prometheus.ValueType, v float64, l ...string) {
			ch <- prometheus.MustNewConstMetric(d, t, v, append([]string{name}, l...)...)
		}
		g(gpMaster, prometheus.GaugeValue, 1, strconv.Itoa(m.PID))
		g(gpMasterStart, prometheus.GaugeValue, m.StartTime)
		g(gpMasterCPU, prometheus.CounterValue, m.CPUSeconds)
		g(gpMasterRSS, prometheus.GaugeValue, m.RSSBytes)
		g(gpWorkers, prometheus.GaugeValue, float64(len(m.Workers)))
		g(gpStarted, prometheus.CounterValue, started)
		for _, r := range rows {
			g(gpWorkerInfo, prometheus.GaugeValue, 1, r.slot, strconv.Itoa(r.w.PID))
			g(gpWorkerRSS, prometheus.GaugeValue, r.w.RSSBytes, r.slot)
			if r.w.HasPSS {
				g(gpWorkerPSS, prometheus.GaugeValue, r.w.PSSBytes, r.slot)
			}
			g(gpWorkerCPU, prometheus.CounterValue, r.w.CPUSeconds, r.slot)
			g(gpWorkerStart, prometheus.GaugeValue, r.w.StartTime, r.slot)
			if r.w.HasHeartbeat {
				g(gpWorkerBeat, prometheus.GaugeValue, r.w.HeartbeatAge, r.slot)
			}
		}
	}, nil
}
