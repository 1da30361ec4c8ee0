package gunicorn

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// MultiprocOptions tune a MultiprocReader.
type MultiprocOptions struct {
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

// MultiprocReader reads prometheus_client multiprocess directories. It keeps the parsed
// keys between reads, so each distinct key's JSON is parsed once. One Read runs at a time.
type MultiprocReader struct {
	opts MultiprocOptions

	mu    sync.Mutex // one Read at a time; guards epoch and the keys' merge caches
	epoch uint64

	keysMu  sync.RWMutex
	keys    map[string]*Key
	badKeys map[string]error

	cache    map[string]*cached // by file name, touched only by Read's goroutine
	mapCount int                // files mapped

	bufs      sync.Pool
	entryPool sync.Pool
}

// NewMultiprocReader returns a reader.
func NewMultiprocReader(opts MultiprocOptions) *MultiprocReader {
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	return &MultiprocReader{opts: opts, keys: map[string]*Key{}, badKeys: map[string]error{}, cache: map[string]*cached{}}
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
func (r *MultiprocReader) Read(ctx context.Context, dir string) (*Snapshot, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
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

	m := newMerger(r.epoch)
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
	for reason, n := range m.dropped {
		snap.Dropped[reason] += n
	}
	r.forget()
	return snap, nil
}

// checkAlive looks up /proc/<ID> once per numeric ID and marks dead writers' live gauges
// to be skipped when asked to.
func (r *MultiprocReader) checkAlive(jobs []FileInfo) {
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

// readFile reads one file and resolves its entries' keys. A file is mapped read-only and
// kept mapped between reads (the writers' own pages of the page cache, nothing copied); while
// its inode, size and used field stay the same, its layout is known and only the values are
// read. Otherwise it is read with pread. Worker goroutines panic on memory faults, so a
// mapped file truncated under us is a recovered read error.
func (r *MultiprocReader) readFile(path string, info FileInfo, c *cached, total *atomic.Int64, tooLarge *atomic.Bool) (res *fileResult) {
	res = &fileResult{info: info}
	fail := func(err error) *fileResult {
		res.problem = &FileProblem{info.Name, reasonOf(err), err}
		res.info.Skipped = true
		res.entries = nil
		if res.cache != nil && res.cache != c && res.cache.data != nil {
			_ = syscall.Munmap(res.cache.data) // mapped by this read, not counted yet
		}
		res.cache = nil
		return res
	}
	if info.Skipped {
		return res
	}
	defer func() {
		if p := recover(); p != nil {
			res = fail(&FileError{FileReasonRead, fmt.Errorf("%s: memory fault while reading (truncated under us?): %v", info.Name, p)})
		}
	}()
	var data []byte
	var size int64
	var ino uint64
	if c != nil && c.data != nil {
		var st syscall.Stat_t
		if err := syscall.Stat(path, &st); err != nil {
			return fail(&fs.PathError{Op: "stat", Path: path, Err: err})
		}
		if st.Ino == c.ino && st.Size == int64(len(c.data)) && st.Mode&syscall.S_IFMT == syscall.S_IFREG {
			data, size, ino = c.data, st.Size, st.Ino
			res.cache = c
		} else {
			info.mayMap = true // replaces the old mapping, which the caller unmaps
		}
	}
	if data == nil {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
		if err != nil {
			return fail(&fs.PathError{Op: "open", Path: path, Err: err})
		}
		defer syscall.Close(fd)
		var st syscall.Stat_t
		if err := syscall.Fstat(fd, &st); err != nil {
			return fail(&fs.PathError{Op: "stat", Path: path, Err: err})
		}
		if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
			return fail(&FileError{FileReasonIgnored, fmt.Errorf("%q is not a regular file", info.Name)})
		}
		size, ino = st.Size, st.Ino
		if info.mayMap && size >= headerSize && size <= 1<<30 {
			if m, err := syscall.Mmap(fd, 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED); err == nil {
				data = m
				res.cache = &cached{ino: ino, data: m}
			}
		}
		if data == nil {
			hint := firstRead
			if c != nil && c.lay != nil {
				hint = max(hint, c.lay.used+4096) // usually the whole used part in one read
			}
			data, err = r.pread(fd, size, hint, res)
			if err != nil {
				return fail(fmt.Errorf("%s: %w", info.Name, err))
			}
			res.cache = &cached{ino: ino}
		}
	}
	res.info.Size = size
	used, err := UsedOf(data)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", info.Name, err))
	}
	if int64(used) > size {
		return fail(&FileError{FileReasonTruncated, fmt.Errorf("%s: header says %d bytes used, the file has %d", info.Name, used, size)})
	}
	if int64(used) > int64(len(data)) {
		return fail(&FileError{FileReasonTruncated, fmt.Errorf("%s: shrank while being read", info.Name)})
	}
	if r.opts.MaxBytes > 0 && total.Add(int64(used)) > r.opts.MaxBytes {
		tooLarge.Store(true)
		return fail(fetch.Errorf(fetch.ReasonTooLarge, "over the byte limit"))
	}
	data = data[:used]
	var lay *layout
	if c != nil && c.lay != nil && c.lay.ino == ino {
		lay = c.lay
	}
	if lay != nil && lay.used == used && res.cache != nil && res.cache.data != nil && res.cache == c {
		// Mapped, same inode (held by the mapping, so never reused) and same size: the
		// append-only file has the same entries; read the values only.
		res.cache.lay = lay
		res.info.Used, res.info.Generation = used, lay.gen
		res.entries = r.values(data, lay, res)
		res.info.Entries = len(res.entries)
		return res
	}
	var gen Generation
	if lay != nil && lay.used == used {
		gen = lay.gen // keys are compared below
	} else {
		used, gen, err = ParseFile(data)
		if err != nil {
			return fail(fmt.Errorf("%s: %w", info.Name, err))
		}
	}
	if lay == nil || lay.gen != gen || lay.used > used {
		lay = &layout{}
	}
	lay.ino, lay.used, lay.gen = ino, used, gen
	res.cache.lay = lay
	res.info.Used, res.info.Generation = used, gen
	res.entries = r.resolveKeys(data, used, gen, lay, res)
	res.info.Entries = len(res.entries)
	return res
}

// values reads the values of a file whose layout is known.
func (r *MultiprocReader) values(data []byte, lay *layout, res *fileResult) []fileEntry {
	entries := r.getEntries(len(lay.keys))
	v2 := lay.gen == GenTimestamp
	for i, k := range lay.keys {
		off := int(lay.offs[i])
		e := fileEntry{key: k, v: math.Float64frombits(binary.LittleEndian.Uint64(data[off:]))}
		if v2 {
			e.ts = math.Float64frombits(binary.LittleEndian.Uint64(data[off+8:]))
		}
		if k == nil {
			res.bad++
		}
		entries = append(entries, e)
	}
	return entries
}

func (r *MultiprocReader) getEntries(n int) []fileEntry {
	if ep, ok := r.entryPool.Get().(*[]fileEntry); ok {
		return (*ep)[:0]
	}
	return make([]fileEntry, 0, n)
}

// pread reads the used part of a file that could not be mapped into a pooled buffer.
func (r *MultiprocReader) pread(fd int, size int64, hint int, res *fileResult) ([]byte, error) {
	bp := r.getBuf(int(min(size, int64(hint))))
	res.buf = bp
	buf := *bp
	n, err := preadFull(fd, buf, 0)
	if err != nil {
		return nil, err
	}
	used, err := UsedOf(buf[:n])
	if err != nil || used <= n || int64(used) > size {
		return buf[:n], nil // the caller reports it
	}
	if cap(buf) < used {
		nb := make([]byte, used)
		copy(nb, buf[:n])
		buf = nb
		*bp = nb
	}
	buf = buf[:used]
	m, err := preadFull(fd, buf[n:], int64(n))
	if err != nil {
		return nil, err
	}
	if n+m < used {
		return nil, &FileError{FileReasonTruncated, fmt.Errorf("shrank while being read")}
	}
	return buf, nil
}

func preadFull(fd int, b []byte, off int64) (int, error) {
	total := 0
	for total < len(b) {
		n, err := syscall.Pread(fd, b[total:], off+int64(total))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return total, err
		}
		if n == 0 {
			break
		}
		total += n
	}
	return total, nil
}

// layout is what a file held at the last read: its entries' keys in order. Files only grow
// by appending, so the next read checks each key against the bytes (a compare, not a hash
// and map probe) and looks up only what changed.
type layout struct {
	ino  uint64
	used int
	gen  Generation
	keys []*Key  // nil for a bad key
	offs []int32 // where each entry's value is
}

// maxMapped bounds the files kept mapped (the kernel's default vm.max_map_count is 65530).
const maxMapped = 16384

// cached is what a reader keeps of a file between reads.
type cached struct {
	ino  uint64
	data []byte // the file mapped read-only, or nil
	lay  *layout
}

// keep records what a file's read left for the next one, and unmaps a mapping it replaced.
func (r *MultiprocReader) keep(name string, prev, now *cached) {
	if prev != nil && prev.data != nil && (now == nil || &now.data[0] != &prev.data[0]) {
		r.unmap(prev)
	}
	if now != nil {
		if now.data != nil && (prev == nil || prev.data == nil || &now.data[0] != &prev.data[0]) {
			r.mapCount++
		}
		r.cache[name] = now
	}
}

func (r *MultiprocReader) unmap(c *cached) {
	if c != nil && c.data != nil {
		_ = syscall.Munmap(c.data)
		c.data = nil
		r.mapCount--
	}
}

// Close unmaps every file the reader keeps mapped.
func (r *MultiprocReader) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.cache {
		r.unmap(c)
	}
	clear(r.cache)
}

// resolveKeys turns a file's entries into parsed keys, parsing only keys never seen before.
func (r *MultiprocReader) resolveKeys(data []byte, used int, gen Generation, lay *layout, res *fileResult) []fileEntry {
	entries := r.getEntries(used/64 + 16)
	var offs []int32
	var missing []int
	var raws [][]byte
	known := lay.keys
	locked := false
	Entries(data, used, gen, func(e Entry) {
		i := len(entries)
		offs = append(offs, int32(e.ValueAt))
		if i < len(known) {
			if k := known[i]; k != nil && len(k.raw) == len(e.Key) && k.raw == string(e.Key) {
				entries = append(entries, fileEntry{k, e.Value, e.Timestamp})
				return
			}
		}
		if !locked {
			r.keysMu.RLock()
			locked = true
		}
		k := r.keys[string(e.Key)]
		if k == nil {
			missing = append(missing, i)
			raws = append(raws, e.Key)
		}
		entries = append(entries, fileEntry{k, e.Value, e.Timestamp})
	})
	if locked {
		r.keysMu.RUnlock()
	}
	for j, i := range missing {
		raw := raws[j]
		r.keysMu.RLock()
		k, known := r.keys[string(raw)]
		_, bad := r.badKeys[string(raw)]
		r.keysMu.RUnlock()
		if !known && !bad {
			var err error
			k, err = ParseKey(raw)
			r.keysMu.Lock()
			if err != nil {
				if len(r.badKeys) < 10000 {
					r.badKeys[string(raw)] = err
				}
			} else if k2 := r.keys[string(raw)]; k2 != nil {
				k = k2
			} else {
				r.keys[string(raw)] = k
			}
			r.keysMu.Unlock()
		}
		if k == nil {
			res.bad++
		}
		entries[i].key = k
	}
	if len(lay.keys) != len(entries) || len(missing) > 0 || locked {
		lay.keys = lay.keys[:0]
		for _, e := range entries {
			lay.keys = append(lay.keys, e.key)
		}
	}
	lay.offs = offs
	return entries
}

func (r *MultiprocReader) getBuf(n int) *[]byte {
	if bp, ok := r.bufs.Get().(*[]byte); ok && cap(*bp) >= n {
		*bp = (*bp)[:n]
		return bp
	}
	b := make([]byte, n, max(n, firstRead))
	return &b
}

func (r *MultiprocReader) release(res *fileResult) {
	if res.buf != nil && cap(*res.buf) <= 16<<20 {
		r.bufs.Put(res.buf)
	}
	if res.entries != nil && cap(res.entries) <= 1<<20 {
		e := res.entries[:0]
		r.entryPool.Put(&e)
	}
	res.buf, res.entries = nil, nil
}

// forget drops keys not seen in this read once they outnumber the live ones, so label
// churn does not grow memory without bound.
func (r *MultiprocReader) forget() {
	r.keysMu.Lock()
	defer r.keysMu.Unlock()
	live := 0
	for _, k := range r.keys {
		if k.merge.epoch == r.epoch {
			live++
		}
	}
	if len(r.keys) > 2*live+1024 {
		for s, k := range r.keys {
			if k.merge.epoch != r.epoch {
				delete(r.keys, s)
			}
		}
	}
	if len(r.badKeys) >= 10000 {
		clear(r.badKeys)
	}
}
