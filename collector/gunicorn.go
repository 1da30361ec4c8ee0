package collector

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/wsgi-exporter/wsgi_exporter/gunicorn"
	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// GunicornKind is a gunicorn master found through its pidfile and read from /proc (series:
// gunicorn_up and gunicorn_metrics.go).
var GunicornKind = Kind{Name: "gunicorn", SourceLabel: "pidfile", Title: "gunicorn master (pidfile and /proc)"}

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

// GunicornOptions are the settings of the gunicorn /proc sources.
type GunicornOptions struct {
	// ProcFS is the mount point of the proc filesystem that shows gunicorn's processes ("":
	// /proc).
	ProcFS string
	// Reader, when set, reads the processes instead of a gunicorn.ProcReader of ProcFS (one
	// reader may serve every source).
	Reader GunicornProcReader
}

// NewGunicorn returns a source for the gunicorn pidfile in cfg.Address.
func NewGunicorn(cfg Config, opts GunicornOptions) (Source, error) {
	cfg, err := cfg.forKind(GunicornKind)
	if err != nil {
		return nil, err
	}
	if cfg.Address == "" {
		return nil, fmt.Errorf("empty pidfile path")
	}
	reader := opts.Reader
	if reader == nil {
		r, err := gunicorn.NewProcReader(opts.ProcFS)
		if err != nil {
			return nil, err
		}
		reader = r
	}
	return &GunicornProcSource{cfg: cfg, reader: reader, sem: make(chan struct{}, 1), now: func() float64 { return float64(time.Now().UnixNano()) / 1e9 }}, nil
}

// Kind implements Source.
func (s *GunicornProcSource) Kind() Kind { return GunicornKind }

// Config implements Source.
func (s *GunicornProcSource) Config() Config { return s.cfg }

// Scrape implements Source.
func (s *GunicornProcSource) Scrape(ctx context.Context, w *Writer) error {
	if ctx.Err() != nil {
		return fetch.Errorf(fetch.ReasonTimeout, "before reading the master: %w", ctx.Err())
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return fetch.Errorf(fetch.ReasonTimeout, "waiting for the previous scrape (still reading /proc): %w", ctx.Err())
	}
	m, rows, started, err := s.read(ctx)
	<-s.sem
	if err != nil {
		return err
	}
	gunicornTranslate(w, m, rows, started)
	return nil
}

// read reads the master and its workers and updates the slots and the restart count; the
// caller holds s.sem.
func (s *GunicornProcSource) read(ctx context.Context) (*gunicorn.Master, []gunicornWorkerRow, float64, error) {
	m, err := s.reader.Read(ctx, s.cfg.Address)
	if err != nil {
		return nil, nil, 0, err
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
	rows := make([]gunicornWorkerRow, len(m.Workers))
	for i, w := range m.Workers {
		rows[i] = gunicornWorkerRow{slot: strconv.Itoa(slots[w.PID]), w: w}
	}
	return m, rows, s.started, nil
}
