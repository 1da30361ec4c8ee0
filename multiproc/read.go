package multiproc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// Options tune a Reader.
type Options struct {
	// MaxBytes caps the used bytes of one directory (read and folded) per scrape (0: no cap).
	// More is a failed scrape with reason too_large, rather than a partial and misleading
	// merge.
	MaxBytes int64
	// MaxFiles caps the names of one directory (0: no cap): every name counts, .db file or
	// not. More is a failed scrape with reason too_large.
	MaxFiles int
	// MaxEntries caps the entries of one directory (read and folded; 0: no cap). More is a
	// failed scrape with reason too_large.
	MaxEntries int
	// MaxSeries caps the distinct entry keys the reader holds for one directory (each
	// histogram bucket is one), and the merged series a read serves (a gauge in all mode
	// gives one per writer); 0: no cap. More is a failed scrape with reason too_large.
	MaxSeries int
	// MaxKeyLength is the longest entry key merged (0: no cap); an entry with a longer key is
	// dropped (reason key_too_long).
	MaxKeyLength int
	// MaxKeyBytes caps the bytes of the distinct keys the reader holds (0: no cap). More is a
	// failed scrape with reason too_large.
	MaxKeyBytes int64
	// Workers read files in parallel; 0 means GOMAXPROCS.
	Workers int
	// ProcRoot is where /proc/<pid> is looked up to tell live writers from dead ones
	// ("" turns the check off, and with it the store).
	ProcRoot string
	// DropDeadLiveGauges skips live* gauge files of processes that no longer exist, as
	// mark_process_dead would have deleted them. It never drops anything when no writer at
	// all is seen alive (the exporter may be in another pid namespace).
	DropDeadLiveGauges bool
	// NoMmap reads every file with pread at every scrape instead of keeping it mapped.
	NoMmap bool
	// NoStore reads the files of dead writers at every scrape instead of folding them once
	// into the store.
	NoStore bool
	// RecheckInterval: the directory is listed again, every folded file checked with a stat
	// and every folded writer's pid looked up at least this often (0: DefaultRecheckInterval).
	RecheckInterval time.Duration
}

// DefaultRecheckInterval is the default Options.RecheckInterval.
const DefaultRecheckInterval = 5 * time.Minute

// The limits the exporter sets by default (its --multiproc.max-* flags; 0 in Options is no
// limit). One scrape of a directory within them allocates at most about 1.2 GB (the formula
// in docs/multiproc.md).
const (
	DefaultMaxFiles     = 200000
	DefaultMaxEntries   = 1000000
	DefaultMaxSeries    = 100000
	DefaultMaxKeyLength = 8 << 10
	DefaultMaxKeyBytes  = 32 << 20
)

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
	// Folded: the file's writer is dead; this read folded it into the store.
	Folded bool

	mayMap bool // the reader may map this file
}

// FileProblem is a file skipped for a reason.
type FileProblem struct {
	Name   string
	Reason string
	Err    error
}

// TypeStats counts the .db files of one metric type.
type TypeStats struct {
	Files     int
	DeadFiles int   // whose writer's pid does not exist
	Size      int64 // on disk
	Used      int64 // used parts
}

// ProcessStats counts the distinct writer ids of a directory's file names.
type ProcessStats struct {
	Alive, Dead, Unknown int
}

// StoreStats says what the store holds and what a read did with it.
type StoreStats struct {
	Files     int   // files folded into the store
	Processes int   // distinct writers of those files
	Entries   int   // their entries
	Used      int64 // their used bytes
	// Skipped counts the directory's files this read did not open: folded ones, and dead
	// writers' live* gauges left out.
	Skipped   int
	Folded    int            // files this read folded
	TakenBack map[string]int // files this read took back out of the store, by TakeBack* reason
	Listed    bool           // this read listed the directory
	Rechecked bool           // this read was a periodic recheck
	Reset     bool           // this read found the directory replaced and emptied the store
}

// Reasons a folded file is taken back out of the store.
const (
	TakeBackRemoved  = "removed"  // gone from the directory
	TakeBackReplaced = "replaced" // its name now names another file
	TakeBackAlive    = "alive"    // its pid exists again (a new process took it)
	TakeBackChanged  = "changed"  // a recheck found its size or times changed
)

// Snapshot is one read of a multiprocess directory.
type Snapshot struct {
	Families []Family
	// Files are the .db files this read opened, in name order: the store's are not.
	Files    []FileInfo
	Problems []FileProblem
	// Dropped counts entries left out of the merge, by reason.
	Dropped map[string]int
	// DroppedDeadLive counts live* gauge files skipped because their process is dead.
	DroppedDeadLive int
	Entries         int   // entries merged (read and folded)
	Bytes           int64 // used bytes merged (read and folded)
	// Types counts every .db file of the directory (read, folded and left out) by type.
	Types     map[string]TypeStats
	Processes ProcessStats
	Store     StoreStats
}

// Reader reads prometheus_client multiprocess directories. It keeps the parsed keys between
// reads, so each distinct key's JSON is parsed once, and folds dead writers' files into a
// store. One Read runs at a time; a Reader serves one directory.
type Reader struct {
	opts Options

	// sem is held by one Read (or Close) at a time; it guards everything below but keysMu's
	// maps. A channel, not a mutex: a Read waiting behind one that is stuck gives up when its
	// context ends instead of piling up blocked goroutines.
	sem   chan struct{}
	epoch uint64

	keysMu      sync.RWMutex
	keys        map[string]*Key
	keyBytes    int64 // of the keys of keys
	badKeys     map[string]error
	badKeyBytes int

	dir          dirState
	dirBuf       []byte
	listGen      uint64
	files        map[string]*fileState // the .db files of the last listing, by name
	order        []*fileState          // the same, in name order
	listProblems []FileProblem         // names of the last listing that are not .db files to read
	active       []*fileState          // files read at every scrape, in name order
	activeDirty  bool
	sleepers     []int64 // pids of folded and parked files, sorted
	sleepDirty   bool
	parked       int                  // files parked
	parkedTypes  map[string]TypeStats // of the parked files
	parkedIDs    map[string]bool      // writer ids of the parked files
	sleepIDs     int                  // distinct writer ids of folded and parked files
	mapCount     int
	store        *store
	procs        procWatch
	lastFull     time.Time
	now          func() time.Time

	gaugeSizes  map[famKey]int // gauge samples per family at the last read
	plan        *plan          // of the last full read, while its files' layouts stay (plan.go)
	planned     int            // reads served through a plan (tests)
	lastEntries int            // entries the last read merged
	collectAt   int            // collectBeforeFull; tests lower it
	collectGap  time.Duration  // collectEvery; tests lower it
	collected   int            // collections forced before full reads (tests)

	bufs      sync.Pool
	entryPool sync.Pool

	mappedHook func(path string) // tests only: runs right after readFile maps a file
	keyHook    func(keys int)    // tests only: runs (keysMu held) after a new key is kept
}

// NewReader returns a reader.
func NewReader(opts Options) *Reader {
	if opts.RecheckInterval <= 0 {
		opts.RecheckInterval = DefaultRecheckInterval
	}
	return &Reader{opts: opts, sem: make(chan struct{}, 1), keys: map[string]*Key{}, badKeys: map[string]error{},
		files: map[string]*fileState{}, store: newStore(1), procs: newProcWatch(opts.ProcRoot), now: time.Now,
		collectAt: collectBeforeFull, collectGap: collectEvery}
}

const firstRead = 64 << 10 // the client's initial file size

// collectBeforeFull is the size of a directory (entries merged by the last read) from which
// entering or leaving the steady state of warm reads through a plan starts a garbage
// collection: a full read that builds a plan ends with one, and a full read that drops one
// starts with one. The Go collector lets the heap grow to twice what was live at its last
// cycle, and a cycle that falls while a full read holds its temporaries (or the last merge)
// sets that bar high for the warm reads after it. Reads that never get a plan (no mapping, a
// file with a problem, a directory that keeps growing new entries) do not collect, and
// collections forced by all readers together are at most one per collectEvery. Below it the
// heap is small anyway. Figures in docs/benchmarks.md.
const collectBeforeFull = 1 << 16

// collectEvery spaces the collections readers force: several large directories rechecked at
// the same scrape make one, not one each over the whole heap.
const collectEvery = 10 * time.Second

// lastCollect is when a reader last forced a collection (UnixNano; 0: never).
var lastCollect atomic.Int64

// collect forces a garbage collection for a directory of collectAt entries or more, unless a
// reader forced one less than collectEvery ago.
func (r *Reader) collect() {
	if r.lastEntries < r.collectAt {
		return
	}
	now, last := time.Now().UnixNano(), lastCollect.Load()
	if last != 0 && now-last < int64(r.collectGap) || !lastCollect.CompareAndSwap(last, now) {
		return
	}
	runtime.GC()
	r.collected++
}

type fileEntry struct {
	key   *Key // nil: a bad key, or one over the length cap
	v, ts float64
}

type fileResult struct {
	info    FileInfo
	problem *FileProblem
	entries []fileEntry
	bad     int // entries with a bad key
	long    int // entries with a key over the length cap
	buf     *[]byte
	cache   *cached // what to keep of the file for the next read
	parsed  bool    // its entries' keys were walked (new or changed layout), not only its values read
	st      fileStatAt
}

// budget is what one read may still take; the workers share it.
type budget struct {
	bytes, entries atomic.Int64
	over           atomic.Pointer[error]
}

func (b *budget) fail(err error) error {
	b.over.CompareAndSwap(nil, &err)
	return err
}

func (b *budget) err() error {
	if p := b.over.Load(); p != nil {
		return *p
	}
	return nil
}

// Read reads and merges every .db file of dir, in sorted name order, with what the store
// holds of dead writers' files.
func (r *Reader) Read(ctx context.Context, dir string) (*Snapshot, error) {
	if err := acquire(ctx, r.sem); err != nil {
		return nil, fetch.Errorf(fetch.ReasonTimeout, "before reading %s (a previous read still running?): %w", dir, err)
	}
	defer func() { <-r.sem }()
	if r.opts.Workers <= 0 {
		// Taken at the first read, not at NewReader: the exporter sets GOMAXPROCS once its
		// sources are built (--runtime.gomaxprocs).
		r.opts.Workers = runtime.GOMAXPROCS(0)
	}
	r.epoch++
	now := r.now()
	dfd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		if err == syscall.ENOTDIR {
			return nil, fetch.Errorf(fetch.ReasonNotFound, "%s is not a directory", dir)
		}
		return nil, fmt.Errorf("opening the multiprocess directory: %w", &fs.PathError{Op: "open", Path: dir, Err: err})
	}
	defer syscall.Close(dfd)
	var dst syscall.Stat_t
	if err := syscall.Fstat(dfd, &dst); err != nil {
		return nil, fmt.Errorf("opening the multiprocess directory: %w", &fs.PathError{Op: "stat", Path: dir, Err: err})
	}
	snap := &Snapshot{Dropped: map[string]int{}, Types: map[string]TypeStats{}}
	snap.Store.TakenBack = map[string]int{}
	if r.dir.ok && (uint64(dst.Dev) != r.dir.dev || uint64(dst.Ino) != r.dir.ino) {
		// Another directory under the same path (a deploy that replaced it): start afresh.
		r.dropAll()
		snap.Store.Reset = true
	}
	useStore := !r.opts.NoStore && r.opts.ProcRoot != ""
	full := !r.dir.ok || now.Sub(r.lastFull) >= r.opts.RecheckInterval
	if full || r.dir.stale(&dst) {
		r.dir.set(&dst, now)
		if err := r.relist(dfd, snap); err != nil {
			r.dir.ok = false
			if fetch.ReasonOf(err) == fetch.ReasonTooLarge {
				return nil, fetch.Errorf(fetch.ReasonTooLarge, "%s: %w", dir, err)
			}
			return nil, fmt.Errorf("listing the multiprocess directory: %w", err)
		}
		snap.Store.Listed = true
	}
	if r.opts.ProcRoot != "" {
		r.wake(full, snap)
	}
	if full {
		r.lastFull = now
		snap.Store.Rechecked = true
		r.recheckFolded(dfd, snap)
	}
	r.store.settle()
	if r.activeDirty {
		r.buildActive()
	}
	anyAlive := r.checkAlive()
	if !anyAlive && r.parked > 0 {
		// Nothing is left out while no writer is seen alive (see DropDeadLiveGauges).
		for _, fs := range r.order {
			if fs.parked {
				r.unpark(fs)
			}
		}
		r.buildActive()
		r.checkAlive()
	}
	jobs := make([]*fileState, 0, len(r.active))
	for _, fs := range r.active {
		if fs.pid && fs.alive == 0 && anyAlive {
			if r.opts.DropDeadLiveGauges && fs.fn.Live() {
				r.park(fs)
				continue
			}
		}
		jobs = append(jobs, fs)
	}
	fold := func(fs *fileState) bool { return useStore && fs.pid && fs.alive == 0 && anyAlive }

	var bud budget
	bud.bytes.Store(r.store.used)
	bud.entries.Store(int64(r.store.entries))
	if r.opts.MaxBytes > 0 && r.store.used > r.opts.MaxBytes {
		return nil, fetch.Errorf(fetch.ReasonTooLarge, "%s holds more than the %d byte limit", dir, r.opts.MaxBytes)
	}
	if r.opts.MaxEntries > 0 && r.store.entries > r.opts.MaxEntries {
		return nil, fetch.Errorf(fetch.ReasonTooLarge, "%s holds more than the %d entry limit", dir, r.opts.MaxEntries)
	}

	if r.plan != nil && !snap.Store.Rechecked && !snap.Store.Reset {
		ok, err := r.readPlanned(ctx, dir, dfd, &dst, jobs, fold, snap)
		if ok {
			if err != nil {
				return nil, err
			}
			r.planned++
			return r.finishRead(dir, snap, r.plan.m, false)
		}
	}
	dropped := r.plan != nil
	if dropped {
		r.plan.drop()
		r.plan = nil
	}
	r.forgetMerge()
	if dropped {
		// Leaving the steady state: the plan and its merge are garbage now, but the Go
		// collector paced its next cycle on a heap that held them.
		r.collect()
	}

	infos := make([]FileInfo, len(jobs))
	mapBudget := max(0, maxMapped-r.mapCount)
	for i, fs := range jobs {
		infos[i] = FileInfo{Name: fs.name, File: fs.fn, Alive: fs.alive}
		if fold(fs) {
			// Read once, then folded: mapped only for this read, and only when large.
			infos[i].Folded = true
			infos[i].mayMap = !r.opts.NoMmap
		} else if (fs.c == nil || fs.c.data == nil) && mapBudget > 0 && !r.opts.NoMmap {
			infos[i].mayMap = true
			mapBudget--
		}
	}
	consumed := 0
	results := make([]chan *fileResult, len(jobs))
	for i := range results {
		results[i] = make(chan *fileResult, 1)
	}
	ctx, cancel := context.WithCancel(ctx)
	var next atomic.Int64
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
				results[i] <- r.readFile(ctx, dfd, &dst, infos[i], jobs[i].c, &bud)
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
				r.keep(jobs[i], res.cache)
				r.release(res)
			default:
			}
		}
	}()

	m := newMerger(r.epoch, r.gaugeSizes)
	pb := planBuilder{ok: !r.opts.NoMmap}
	m.record = pb.ok
	for i, fs := range jobs {
		var res *fileResult
		select {
		case res = <-results[i]:
		case <-ctx.Done():
			return nil, fetch.Errorf(fetch.ReasonTimeout, "reading %s: %w", dir, ctx.Err())
		}
		<-window
		consumed = i + 1
		if err := bud.err(); err != nil {
			r.keep(fs, res.cache)
			r.release(res)
			if fetch.ReasonOf(err) == fetch.ReasonTimeout {
				return nil, fetch.Errorf(fetch.ReasonTimeout, "reading %s: %w", dir, err)
			}
			return nil, fetch.Errorf(fetch.ReasonTooLarge, "%s: %w", dir, err)
		}
		fs.info = res.info
		fs.foreign = res.problem != nil && (res.problem.Reason == FileReasonSymlink || res.problem.Reason == FileReasonNotRegular)
		if res.problem != nil || res.info.Folded || res.parsed {
			// A plan is made by a full read that found every file as the last one left
			// it: not while files change from one read to the next.
			pb.ok, m.record = false, false
		}
		if res.problem != nil {
			r.keep(fs, res.cache)
			if !(res.problem.Reason == FileReasonVanished && fs.fn.Live()) {
				snap.Problems = append(snap.Problems, *res.problem)
			}
			if res.problem.Reason != FileReasonVanished && !fs.foreign {
				snap.Files = append(snap.Files, res.info)
			}
			r.release(res)
			continue
		}
		if res.info.Folded {
			r.foldFile(fs, res)
			snap.Store.Folded++
			r.release(res)
			continue
		}
		r.keep(fs, res.cache)
		at := pos{file: fs.name}
		var tgts []int32
		if pb.ok {
			tgts = make([]int32, len(res.entries))
		}
		for j, e := range res.entries {
			t := int32(-1)
			if e.key != nil {
				at.idx = int32(j)
				t = m.add(e.key, &fs.fn, at, e.v, e.ts)
			}
			if tgts != nil {
				tgts[j] = t
			}
		}
		pb.addFile(fs, res, tgts)
		m.record = pb.ok
		snap.Entries += len(res.entries)
		snap.Bytes += int64(res.info.Used)
		snap.Dropped[EntryReasonBadKey] += res.bad
		snap.Dropped[EntryReasonKeyTooLong] += res.long
		snap.Files = append(snap.Files, res.info)
		r.release(res)
	}
	if snap.Store.Folded > 0 || r.activeDirty {
		r.buildActive()
	}
	var p *plan
	if pb.ok {
		p = pb.build(m, r.opts.Workers, snap.Entries, snap.Bytes, snap.Dropped[EntryReasonBadKey], snap.Dropped[EntryReasonKeyTooLong])
	}
	snap, err = r.finishRead(dir, snap, m, true)
	switch {
	case err == nil:
		r.plan = p
		if p != nil {
			// Entering the steady state: the plan's builder and the read's buffers are
			// garbage; collected now, the warm reads pace their collections on what is kept.
			r.collect()
		}
	case p != nil:
		p.drop() // the layouts get their value offsets back: the next read is a full one
	}
	return snap, err
}

// finishRead merges the read's families with the store's and completes snap. fresh: m is a new
// merge (not a plan's again).
func (r *Reader) finishRead(dir string, snap *Snapshot, m *merger, fresh bool) (*Snapshot, error) {
	var st *store
	if len(r.store.fams) > 0 {
		st = r.store
	}
	snap.Families = m.finish(st, snap.Dropped)
	if fresh {
		r.gaugeSizes = m.gaugeSizes()
	}
	if r.opts.MaxSeries > 0 {
		n := 0
		for i := range snap.Families {
			n += len(snap.Families[i].Series)
		}
		if n > r.opts.MaxSeries {
			return nil, fetch.Errorf(fetch.ReasonTooLarge, "%s: %d merged series, over the %d series limit", dir, n, r.opts.MaxSeries)
		}
	}
	snap.Entries += r.store.entries
	r.lastEntries = snap.Entries
	snap.Bytes += r.store.used
	snap.Dropped[EntryReasonBadKey] += r.store.bad
	snap.Dropped[EntryReasonKeyTooLong] += r.store.long
	for reason, n := range snap.Dropped {
		if n == 0 {
			delete(snap.Dropped, reason)
		}
	}
	snap.Problems = append(snap.Problems, r.listProblems...)
	slices.SortStableFunc(snap.Problems, func(a, b FileProblem) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	snap.DroppedDeadLive = r.parked
	r.summarize(snap)
	r.forget()
	return snap, nil
}

// foldFile moves a dead writer's file just read into the store and drops its mapping.
func (r *Reader) foldFile(fs *fileState, res *fileResult) {
	f := &foldedFile{name: fs.name, fn: fs.fn, ino: res.st.ino, size: res.info.Size, used: res.info.Used,
		gen: res.info.Generation, mtime: res.st.mtime, ctime: res.st.ctime, bad: res.bad, long: res.long,
		entries: make([]foldedEntry, len(res.entries))}
	for i, e := range res.entries {
		f.entries[i] = foldedEntry(e)
	}
	st := res.st
	fs.st = &st
	r.store.fold(f)
	fs.folded = true
	if res.cache != nil && res.cache.data != nil && (fs.c == nil || res.cache != fs.c) {
		_ = syscall.Munmap(res.cache.data) // mapped by this read for the fold only
		res.cache.data = nil
	}
	r.detach(fs)
}

func (r *Reader) park(fs *fileState) {
	fs.parked = true
	r.parked++
	r.detach(fs)
}

// detach unmaps fs's file, which is no longer read at every scrape (folded or parked), and
// has the sets of active and sleeping files built again.
func (r *Reader) detach(fs *fileState) {
	if fs.c != nil {
		r.unmap(fs.c)
		fs.c = nil
	}
	r.activeDirty = true
	r.sleepDirty = true
}

func (r *Reader) unpark(fs *fileState) {
	fs.parked = false
	r.parked--
	r.activeDirty = true
	r.sleepDirty = true
}

// buildActive lists the files read at every scrape: all but the folded and the parked ones.
func (r *Reader) buildActive() {
	r.active = r.active[:0]
	for _, fs := range r.order {
		if !fs.folded && !fs.parked {
			r.active = append(r.active, fs)
		}
	}
	r.activeDirty = false
}

// checkAlive looks up /proc/<ID> once per numeric ID of the active files. It reports whether
// some writer is alive.
func (r *Reader) checkAlive() bool {
	if r.opts.ProcRoot == "" {
		return false
	}
	alive := map[string]int8{}
	anyAlive := false
	for _, fs := range r.active {
		if !fs.pid {
			continue
		}
		a, ok := alive[fs.fn.ID]
		if !ok {
			a = 0
			if r.procs.exists(fs.fn.ID) {
				a = 1
			}
			alive[fs.fn.ID] = a
		}
		fs.alive = a
		anyAlive = anyAlive || a == 1
	}
	return anyAlive
}

// wake takes back out of the store (and back into the read) the files of sleeping pids that
// exist again: those handed out since the last read, or all of them at a recheck.
func (r *Reader) wake(full bool, snap *Snapshot) {
	ranges, ok := r.procs.handedOut()
	r.sleepStats()
	if len(r.sleepers) == 0 {
		return
	}
	var check []int64
	if full || !ok {
		check = r.sleepers
	} else {
		check = within(r.sleepers, ranges)
	}
	if len(check) == 0 {
		return
	}
	living := r.procs.living(check)
	if len(living) == 0 {
		return
	}
	woken := map[string]bool{}
	for _, n := range living {
		woken[strconv.FormatInt(n, 10)] = true
	}
	for _, fs := range r.order {
		if !woken[fs.fn.ID] {
			continue
		}
		if fs.folded {
			r.store.takeBack(fs.name)
			fs.folded = false
			snap.Store.TakenBack[TakeBackAlive]++
			r.activeDirty, r.sleepDirty = true, true
		}
		if fs.parked {
			r.unpark(fs)
		}
	}
}

// recheckFolded stats every folded file: one whose inode, size or times changed since it was
// folded is taken back and read again.
func (r *Reader) recheckFolded(dfd int, snap *Snapshot) {
	for _, fs := range r.order {
		if !fs.folded || fs.st == nil {
			continue
		}
		st, err := fstatat(dfd, fs.name)
		if err == nil && st.ino == fs.st.ino && st.size == fs.st.size && st.mtime == fs.st.mtime && st.ctime == fs.st.ctime {
			continue
		}
		reason := TakeBackChanged
		if err != nil {
			reason = TakeBackRemoved
		}
		r.store.takeBack(fs.name)
		fs.folded = false
		snap.Store.TakenBack[reason]++
		r.activeDirty, r.sleepDirty = true, true
	}
}

// dropAll forgets everything known of the directory.
func (r *Reader) dropAll() {
	for _, fs := range r.files {
		if fs.c != nil {
			r.unmap(fs.c)
		}
	}
	r.files = map[string]*fileState{}
	r.order, r.active, r.sleepers, r.listProblems = nil, nil, nil, nil
	r.activeDirty, r.sleepDirty, r.parked = true, true, 0
	r.store.drop()
	r.dir = dirState{}
}

// sleepStats brings up to date what is known of the folded and parked files: their pids
// (sorted, to check those handed out again), and the parked files' counts.
func (r *Reader) sleepStats() {
	if !r.sleepDirty {
		return
	}
	r.sleepers = r.sleepers[:0]
	r.parkedTypes = map[string]TypeStats{}
	r.parkedIDs = map[string]bool{}
	seen := map[string]bool{}
	for _, fs := range r.order {
		if !fs.folded && !fs.parked {
			continue
		}
		if fs.parked {
			t := r.parkedTypes[fs.fn.Type]
			t.Files++
			t.DeadFiles++
			r.parkedTypes[fs.fn.Type] = t
			r.parkedIDs[fs.fn.ID] = true
		}
		if !seen[fs.fn.ID] {
			seen[fs.fn.ID] = true
			if n, err := strconv.ParseInt(fs.fn.ID, 10, 64); err == nil && fs.pid {
				r.sleepers = append(r.sleepers, n)
			}
		}
	}
	slices.Sort(r.sleepers)
	r.sleepIDs = len(seen)
	r.sleepDirty = false
}

// summarize counts the directory's files by type and its writers by state: the folded and
// parked ones from what is kept of them, the others from this read.
func (r *Reader) summarize(snap *Snapshot) {
	r.sleepStats()
	add := func(t string, x TypeStats) {
		y := snap.Types[t]
		y.Files += x.Files
		y.DeadFiles += x.DeadFiles
		y.Size += x.Size
		y.Used += x.Used
		snap.Types[t] = y
	}
	for t, x := range r.store.types {
		add(t, *x)
	}
	for t, x := range r.parkedTypes {
		add(t, x)
	}
	ids := map[string]int8{}
	for _, fs := range r.active {
		if fs.foreign {
			continue // not a file of the directory's: nothing of it is counted
		}
		x := TypeStats{Files: 1, Size: fs.info.Size, Used: int64(fs.info.Used)}
		if fs.alive == 0 && fs.pid && r.opts.ProcRoot != "" {
			x.DeadFiles = 1
		}
		add(fs.fn.Type, x)
		a := fs.alive
		if !fs.pid || r.opts.ProcRoot == "" {
			a = -1
		}
		if prev, ok := ids[fs.fn.ID]; !ok || a > prev {
			ids[fs.fn.ID] = a
		}
	}
	snap.Processes.Dead = r.sleepIDs
	for id, a := range ids {
		switch {
		case a == 1:
			snap.Processes.Alive++
		case a == 0:
			if r.store.ids[id] == 0 && !r.parkedIDs[id] {
				snap.Processes.Dead++
			}
		default:
			snap.Processes.Unknown++
		}
	}
	s := r.store.stats()
	s.Skipped = len(r.store.files) + r.parked
	s.Folded, s.TakenBack = snap.Store.Folded, snap.Store.TakenBack
	s.Listed, s.Rechecked, s.Reset = snap.Store.Listed, snap.Store.Rechecked, snap.Store.Reset
	snap.Store = s
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
