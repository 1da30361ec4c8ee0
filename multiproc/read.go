package multiproc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// Options tune a Reader.
type Options struct {
	// MaxBytes caps the bytes read from one directory per scrape (0: no cap). More is a
	// failed scrape with reason too_large, rather than a partial and misleading merge.
	MaxBytes int64
	// Workers read files in parallel; 0 means GOMAXPROCS.
	Workers int
	// ProcRoot is where /proc/<pid> is looked up to tell live writers from dead ones
	// ("" turns the check off).
	ProcRoot string
	// DropDeadLiveGauges skips live* gauge files of processes that no longer exist, as
	// mark_process_dead would have deleted them. It never drops anything when no writer at
	// all is seen alive (the exporter may be in another pid namespace).
	DropDeadLiveGauges bool
	// NoMmap reads every file with pread at every scrape instead of keeping it mapped.
	NoMmap bool
}

// FileInfo describes one file of a directory.
type FileInfo struct {
	Name       string
	File       FileName
	Size       int64 // on disk (the client preallocates: usually more than Used)
	Used       int
	Generation Generation
	Entries    int
	// Alive: 1 when /proc/<ID> exists, 0 when it does not, -1 when unknown (no numeric ID,
	// or liveness checks off).
	Alive int8
	// Skipped: the file was not merged (a problem, or a dead process' live gauge).
	Skipped bool

	mayMap bool // the reader may map this file
}

// FileProblem is a file skipped for a reason.
type FileProblem struct {
	Name   string
	Reason string
	Err    error
}

// Snapshot is one read of a multiprocess directory.
type Snapshot struct {
	Families []Family
	Files    []FileInfo // the .db files with a valid name, in name order
	Problems []FileProblem
	// Dropped counts entries left out of the merge, by reason.
	Dropped map[string]int
	// DroppedDeadLive counts live* gauge files skipped because their process is dead.
	DroppedDeadLive int
	Entries         int // entries read
	Bytes           int64
}

// Reader reads prometheus_client multiprocess directories. It keeps the parsed
// keys between reads, so each distinct key's JSON is parsed once. One Read runs at a time.
type Reader struct {
	opts Options

	// sem is held by one Read (or Close) at a time; it guards epoch, the keys' merge caches
	// and the file cache. A channel, not a mutex: a Read waiting behind one that is stuck
	// gives up when its context ends instead of piling up blocked goroutines.
	sem   chan struct{}
	epoch uint64

	keysMu  sync.RWMutex
	keys    map[string]*Key
	badKeys map[string]error

	cache    map[string]*cached // by file name, touched only by Read's goroutine
	mapCount int                // files mapped

	gaugeSizes map[string]int // gauge samples per family at the last read

	bufs      sync.Pool
	entryPool sync.Pool

	mappedHook func(path string) // tests only: runs right after readFile maps a file
}

// NewReader returns a reader.
func NewReader(opts Options) *Reader {
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	return &Reader{opts: opts, sem: make(chan struct{}, 1), keys: map[string]*Key{}, badKeys: map[string]error{}, cache: map[string]*cached{}}
}

const firstRead = 64 << 10 // the client's initial file size

type fileEntry struct {
	key   *Key // nil: a bad key
	v, ts float64
}

type fileResult struct {
	info    FileInfo
	problem *FileProblem
	entries []fileEntry
	bad     int // entries with a bad key
	buf     *[]byte
	cache   *cached // what to keep of the file for the next read
}

// Read reads and merges every .db file of dir, in sorted name order.
func (r *Reader) Read(ctx context.Context, dir string) (*Snapshot, error) {
	if err := acquire(ctx, r.sem); err != nil {
		return nil, fetch.Errorf(fetch.ReasonTimeout, "before reading %s (a previous read still running?): %w", dir, err)
	}
	defer func() { <-r.sem }()
	r.epoch++
	des, err := os.ReadDir(dir)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) && errors.Is(err, syscall.ENOTDIR) {
			return nil, fetch.Errorf(fetch.ReasonNotFound, "%s is not a directory", dir)
		}
		return nil, fmt.Errorf("listing the multiprocess directory: %w", err)
	}
	snap := &Snapshot{Dropped: map[string]int{}}
	var jobs []FileInfo
	for _, de := range des {
		name := de.Name()
		fn, err := ParseFileName(name)
		if err == nil && !de.Type().IsRegular() && de.Type()&fs.ModeSymlink == 0 {
			err = &FileError{Reason: FileReasonIgnored, Err: fmt.Errorf("%q is not a regular file", name)}
		}
		if err != nil {
			snap.Problems = append(snap.Problems, FileProblem{name, reasonOf(err), err})
			continue
		}
		jobs = append(jobs, FileInfo{Name: name, File: fn, Alive: -1})
	}
	r.checkAlive(jobs)
	old := r.cache
	r.cache = make(map[string]*cached, len(jobs))
	prev := make([]*cached, len(jobs))
	mapBudget := max(0, maxMapped-r.mapCount)
	for i := range jobs {
		prev[i] = old[jobs[i].Name]
		delete(old, jobs[i].Name)
		if prev[i] == nil || prev[i].data == nil {
			if mapBudget > 0 && !r.opts.NoMmap {
				jobs[i].mayMap = true
				mapBudget--
			}
		}
	}
	for _, c := range old { // files gone from the directory
		r.unmap(c)
	}
	consumed := 0

	results := make([]chan *fileResult, len(jobs))
	for i := range results {
		results[i] = make(chan *fileResult, 1)
	}
	ctx, cancel := context.WithCancel(ctx)
	var next, total atomic.Int64
	var tooLarge atomic.Bool
	window := make(chan struct{}, 4*r.opts.Workers) // bounds the files read ahead of the merge
	var wg sync.WaitGroup
	for w := 0; w < r.opts.Workers; w++ {
		wg.Go(func() {
			debug.SetPanicOnFault(true) // a fault on a mapped file is a recovered panic
			for {
				select {
				case window <- struct{}{}:
				case <-ctx.Done():
					return
				}
				i := int(next.Add(1) - 1)
				if i >= len(jobs) {
					return
				}
				res := r.readFile(filepath.Join(dir, jobs[i].Name), jobs[i], prev[i], &total, &tooLarge)
				results[i] <- res
			}
		})
	}
	defer func() {
		cancel()
		wg.Wait()
		// On an early return, keep what the unconsumed jobs mapped, to reuse or unmap later.
		for i := consumed; i < len(jobs); i++ {
			select {
			case res := <-results[i]:
				r.keep(jobs[i].Name, prev[i], res.cache)
			default:
				r.keep(jobs[i].Name, prev[i], prev[i])
			}
		}
	}()

	m := newMerger(r.epoch, r.gaugeSizes)
	for i := range jobs {
		var res *fileResult
		select {
		case res = <-results[i]:
		case <-ctx.Done():
			return nil, fetch.Errorf(fetch.ReasonTimeout, "reading %s: %w", dir, ctx.Err())
		}
		<-window
		consumed = i + 1
		r.keep(jobs[i].Name, prev[i], res.cache)
		if tooLarge.Load() {
			return nil, fetch.Errorf(fetch.ReasonTooLarge, "%s holds more than the %d byte limit", dir, r.opts.MaxBytes)
		}
		if res.problem != nil {
			if !(res.problem.Reason == FileReasonVanished && res.info.File.Live()) {
				snap.Problems = append(snap.Problems, *res.problem)
			}
		} else {
			fn := &jobs[i].File
			for _, e := range res.entries {
				if e.key != nil {
					m.add(e.key, fn, e.v, e.ts)
				}
			}
			snap.Entries += len(res.entries)
			snap.Bytes += int64(res.info.Used)
			if res.bad > 0 {
				snap.Dropped[EntryReasonBadKey] += res.bad
			}
		}
		if res.info.Skipped && res.problem == nil {
			snap.DroppedDeadLive++
		}
		if res.problem == nil || res.problem.Reason != FileReasonVanished {
			snap.Files = append(snap.Files, res.info)
		}
		r.release(res)
	}
	snap.Families = m.families()
	r.gaugeSizes = m.gaugeSizes()
	for reason, n := range m.dropped {
		snap.Dropped[reason] += n
	}
	r.forget()
	return snap, nil
}

// acquire takes the one-slot semaphore sem, or returns ctx's error when ctx has ended or
// ends first.
func acquire(ctx context.Context, sem chan struct{}) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// checkAlive looks up /proc/<ID> once per numeric ID and marks dead writers' live gauges
// to be skipped when asked to.
func (r *Reader) checkAlive(jobs []FileInfo) {
	if r.opts.ProcRoot == "" {
		return
	}
	alive := map[string]int8{}
	anyAlive := false
	for i := range jobs {
		id := jobs[i].File.ID
		if !isPID(id) {
			continue
		}
		a, ok := alive[id]
		if !ok {
			a = 0
			if _, err := os.Stat(filepath.Join(r.opts.ProcRoot, id)); err == nil {
				a = 1
			}
			alive[id] = a
		}
		jobs[i].Alive = a
		anyAlive = anyAlive || a == 1
	}
	if r.opts.DropDeadLiveGauges && anyAlive {
		for i := range jobs {
			if jobs[i].Alive == 0 && jobs[i].File.Live() {
				jobs[i].Skipped = true
			}
		}
	}
}

func isPID(s string) bool {
	if s == "" || len(s) > 10 || s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func reasonOf(err error) string {
	var fe *FileError
	if errors.As(err, &fe) {
		return fe.Reason
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return FileReasonVanished
	case errors.Is(err, fs.ErrPermission):
		return FileReasonPermission
	}
	return FileReasonRead
}
