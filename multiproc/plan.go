package multiproc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"sync"
	"syscall"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// A plan is what a warm read needs when no file's layout changed since the last full read: the
// client only appends entries (the used field at offset 0 says how far), so while every file
// still maps the same inode with the same size, used field and first and last keys, each
// entry's value goes where it went at the last full read. The plan keeps that: per file and
// per worker, the entries' value offsets with their targets (a series' accumulator, or a gauge
// sample of the merge), and the merge those targets belong to. A planned read checks each file
// (one stat without following links, the header, the two end keys), resets the targets and adds
// the values into them: nothing is parsed, looked up or allocated per entry. Any change, a
// memory fault (a file truncated under the mapping), a fold or a periodic recheck makes the
// read a full one, which builds the next plan.
//
// The targets are shared among the workers by index ranges, not the files: a worker walks every
// file in name order and adds only the entries of its targets, so each accumulator sees its
// terms in the same order as a full read (exact sums do not depend on it, but a sum that
// overflows would), and no two workers write the same target.
type plan struct {
	m       *merger
	files   []planFile
	tg      []planTarget
	cuts    []int // worker w owns the targets [cuts[w], cuts[w+1])
	entries int
	bytes   int64
	bad     int
	long    int
}

type planFile struct {
	fs    *fileState
	c     *cached
	lay   *layout
	info  FileInfo   // as the full read found it: its used field and generation stay the layout's
	parts [][]uint64 // per worker: value offset << 32 | target
	// Or, when every target is below 2^16 and every offset within 64 KiB of the worker's
	// previous one in the file (the usual case), half the size: per worker the first offset
	// and (offset - previous offset) << 16 | target.
	cparts [][]uint32
	bases  []uint32
	rest   []int32 // the value offsets of the entries without a target
	// The first and last entries' keys, where they stand (a bad key's too, unlike sameEnds);
	// hasEnds false for a file without entries.
	first, last     string
	firstAt, lastAt int
	hasEnds         bool
}

// planTarget is an xsum to add values to, or a gauge sample to set.
type planTarget struct {
	x *xsum
	g *gaugeSample
}

// planBuilder collects, during a full read, what the plan needs.
type planBuilder struct {
	ok    bool
	files []planFile
	tgts  [][]int32 // per file, per entry: its target or -1
}

// addFile records a file merged by a full read; tgts are its entries' targets (-1: none).
func (b *planBuilder) addFile(fs *fileState, res *fileResult, tgts []int32) {
	if !b.ok {
		return
	}
	if res.cache == nil || res.cache.data == nil || res.cache.lay == nil || len(res.cache.lay.offs) != len(tgts) {
		b.ok = false
		return
	}
	f := planFile{fs: fs, c: res.cache, lay: res.cache.lay, info: res.info}
	if !f.setEnds() {
		b.ok = false
		return
	}
	b.files = append(b.files, f)
	b.tgts = append(b.tgts, tgts)
}

// keyAt returns the key of the entry at pos of data, or false.
func keyAt(data []byte, pos int) ([]byte, bool) {
	if pos < 0 || pos+4 > len(data) {
		return nil, false
	}
	kl := int(binary.LittleEndian.Uint32(data[pos:]))
	if kl > len(data)-pos-4 {
		return nil, false
	}
	return data[pos+4 : pos+4+kl], true
}

// setEnds records the file's first and last keys (copies: the mapping may fault, recovered).
func (f *planFile) setEnds() (ok bool) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if recover() != nil {
			ok = false
		}
	}()
	n := len(f.lay.offs)
	if n == 0 {
		return true
	}
	data := f.c.data[:f.info.Used]
	f.firstAt, f.lastAt = f.lay.entryStart(0), f.lay.entryStart(n-1)
	first, ok1 := keyAt(data, f.firstAt)
	last, ok2 := keyAt(data, f.lastAt)
	if !ok1 || !ok2 {
		return false
	}
	f.first, f.last, f.hasEnds = keyString(first, f.lay.keys[0]), keyString(last, f.lay.keys[n-1]), true
	return true
}

// keyString is raw as a string: the parsed key's own copy when it is that key (no copy kept
// per file), else a copy.
func keyString(raw []byte, k *Key) string {
	if k != nil && k != longKey && k.raw == string(raw) {
		return k.raw
	}
	return string(raw)
}

// sameEnds reports whether data still holds the file's first and last keys where they were.
func (f *planFile) sameEnds(data []byte) bool {
	if !f.hasEnds {
		return true // no entries: the used field says it all
	}
	first, ok1 := keyAt(data, f.firstAt)
	last, ok2 := keyAt(data, f.lastAt)
	return ok1 && ok2 && string(first) == f.first && string(last) == f.last
}

// build makes the plan of the merge m for workers workers.
func (b *planBuilder) build(m *merger, workers int, entries int, bytes int64, bad, long int) *plan {
	p := &plan{m: m, files: b.files, tg: make([]planTarget, len(m.tgts))}
	for i, t := range m.tgts {
		switch t.role {
		case roleValue:
			p.tg[i].x = &t.s.value
		case roleCount:
			p.tg[i].x = &t.s.count
		case roleSum:
			p.tg[i].x = &t.s.sum
		case roleBucket:
			p.tg[i].x = &t.s.buckets[t.i].n
		case roleGauge:
			p.tg[i].g = &t.fam.gauges[t.i]
		}
	}
	// Cut the targets into ranges of about as many entries each.
	count := make([]int32, len(p.tg)+1)
	total := 0
	for _, ts := range b.tgts {
		for _, t := range ts {
			if t >= 0 {
				count[t]++
				total++
			}
		}
	}
	p.cuts = make([]int, workers+1)
	w, acc := 1, 0
	for t := range p.tg {
		for w < workers && acc >= total*w/workers {
			p.cuts[w] = t
			w++
		}
		acc += int(count[t])
	}
	for ; w <= workers; w++ {
		p.cuts[w] = len(p.tg)
	}
	owner := func(t int32) int {
		for w := 0; w < workers; w++ {
			if int(t) < p.cuts[w+1] {
				return w
			}
		}
		return workers - 1
	}
	per := make([]int, workers)
	first := make([]int32, workers)
	prev := make([]int32, workers)
	seen := make([]bool, workers)
	for i := range p.files {
		f := &p.files[i]
		offs := f.lay.offs
		tgts := b.tgts[i]
		clear(per)
		clear(seen)
		compact := !planWide
		n := 0
		for j, t := range tgts {
			if t < 0 {
				f.rest = append(f.rest, offs[j])
				continue
			}
			w := owner(t)
			per[w]++
			n++
			if t >= 1<<16 {
				compact = false
			}
			if !seen[w] {
				seen[w], first[w] = true, offs[j]
			} else if offs[j]-prev[w] >= 1<<16 {
				compact = false
			}
			prev[w] = offs[j]
		}
		if compact {
			back := make([]uint32, n)
			f.cparts = make([][]uint32, workers)
			f.bases = make([]uint32, workers)
			for w := range f.cparts {
				f.cparts[w], back = back[:0:per[w]], back[per[w]:]
				f.bases[w] = uint32(first[w])
				prev[w] = first[w]
			}
			for j, t := range tgts {
				if t >= 0 {
					w := owner(t)
					f.cparts[w] = append(f.cparts[w], uint32(offs[j]-prev[w])<<16|uint32(t))
					prev[w] = offs[j]
				}
			}
			continue
		}
		back := make([]uint64, n)
		f.parts = make([][]uint64, workers)
		for w := range f.parts {
			f.parts[w], back = back[:0:per[w]], back[per[w]:]
		}
		for j, t := range tgts {
			if t >= 0 {
				w := owner(t)
				f.parts[w] = append(f.parts[w], uint64(uint32(offs[j]))<<32|uint64(uint32(t)))
			}
		}
	}
	m.tgts = nil
	// The lookups of a merge in progress: a plan's merge is only served again.
	m.fams = nil
	for _, f := range m.order {
		f.series = nil
	}
	for i := range p.files {
		// The parts hold the offsets now; drop gives them back to the layouts.
		p.files[i].lay.offs = nil
	}
	p.entries, p.bytes, p.bad, p.long = entries, bytes, bad, long
	return p
}

// planWide makes every plan's parts wide (tests of both layouts).
var planWide = false

// errPlanFault: a mapped file faulted under a planned read (truncated): the full read finds out
// which and why.
var errPlanFault = errors.New("memory fault in a planned read")

// drop gives the layouts back the value offsets the plan holds, for the full read that
// replaces it: merged from the parts and the rest, which are each in entry order.
func (p *plan) drop() {
	for i := range p.files {
		f := &p.files[i]
		if f.lay.offs != nil {
			continue
		}
		lists := [][]int32{f.rest}
		n := len(f.rest)
		for w := range f.parts {
			l := make([]int32, len(f.parts[w]))
			for j, e := range f.parts[w] {
				l[j] = int32(e >> 32)
			}
			lists = append(lists, l)
			n += len(l)
		}
		for w := range f.cparts {
			l := make([]int32, len(f.cparts[w]))
			off := int32(f.bases[w])
			for j, e := range f.cparts[w] {
				off += int32(e >> 16)
				l[j] = off
			}
			lists = append(lists, l)
			n += len(l)
		}
		offs := make([]int32, 0, n)
		at := make([]int, len(lists))
		for len(offs) < n {
			best, from := int32(math.MaxInt32), -1
			for k, l := range lists {
				if at[k] < len(l) && (from < 0 || l[at[k]] < best) {
					best, from = l[at[k]], k
				}
			}
			at[from]++
			offs = append(offs, best)
		}
		f.lay.offs = offs
	}
}

// errPlanStale: a file of the plan changed (its inode, size, used field or ends).
var errPlanStale = errors.New("a file changed since the plan was made")

// usable reports whether the plan still lists jobs: the same files, mapped as when it was
// built, none to be folded. Each file's own check is fileOK, in the workers.
func (p *plan) usable(jobs []*fileState, fold func(*fileState) bool) bool {
	if len(jobs) != len(p.files) {
		return false
	}
	for i, fs := range jobs {
		f := &p.files[i]
		if f.fs != fs || fs.c != f.c || f.c.data == nil || f.c.lay != f.lay || fold(fs) {
			return false
		}
	}
	return true
}

// fileOK checks, as a full read's fast path does, that the name still is the mapped file (a
// stat without following links: the same inode on the directory's filesystem, a regular file
// of the mapped size: so neither replaced nor truncated), then that its used field and first
// and last keys did not change. data may fault: the caller recovers. (The layout is not checked
// again: only readFile changes it, and no full read runs while the plan is kept.)
func (f *planFile) fileOK(dfd int, dst *syscall.Stat_t) bool {
	st, err := fstatat(dfd, f.fs.name)
	if err != nil || !st.maps(f.c, dst) {
		return false
	}
	used, err := UsedOf(f.c.data)
	return err == nil && used == f.info.Used && used <= len(f.c.data) && f.sameEnds(f.c.data[:used])
}

// run resets the targets and adds every file's values into them, with one goroutine per worker.
func (p *plan) run(ctx context.Context, dfd int, dst *syscall.Stat_t) error {
	workers := len(p.cuts) - 1
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Go(func() { errs[w] = p.walk(ctx, w, dfd, dst) })
	}
	wg.Wait()
	var err error
	for _, e := range errs {
		switch {
		case e == nil:
		case errors.Is(e, errPlanFault), errors.Is(e, errPlanStale):
			return e
		case err == nil:
			err = e
		}
	}
	return err
}

// walk is worker w's part of run: it checks every workers-th file (a file that changed makes
// the whole read a full one, and what was added is dropped), and adds its targets' values.
func (p *plan) walk(ctx context.Context, w int, dfd int, dst *syscall.Stat_t) (err error) {
	debug.SetPanicOnFault(true)
	defer func() {
		if x := recover(); x != nil {
			err = fmt.Errorf("%w: %v", errPlanFault, x)
		}
	}()
	workers := len(p.cuts) - 1
	for i := w; i < len(p.files); i += workers {
		if !p.files[i].fileOK(dfd, dst) {
			return errPlanStale
		}
	}
	tg := p.tg[p.cuts[w]:p.cuts[w+1]]
	for i := range tg {
		if x := tg[i].x; x != nil {
			x.reset()
		}
	}
	n := 0
	for i := range p.files {
		f := &p.files[i]
		data := f.c.data
		v2 := f.info.Generation == GenTimestamp
		// An entry is either compact (cparts: the offset a delta from the previous one, 16
		// bits of target) or wide (parts: 32 bits of offset, 32 of target); one loop reads both.
		var part []uint64
		var cpart []uint32
		off := 0
		count := 0
		if f.cparts != nil {
			cpart, off = f.cparts[w], int(f.bases[w])
			count = len(cpart)
		} else {
			part = f.parts[w]
			count = len(part)
		}
		for j := 0; j < count; j++ {
			var ti int
			if cpart != nil {
				e := cpart[j]
				off += int(e >> 16)
				ti = int(e & 0xffff)
			} else {
				e := part[j]
				off, ti = int(e>>32), int(uint32(e))
			}
			v := math.Float64frombits(binary.LittleEndian.Uint64(data[off:]))
			t := &p.tg[ti]
			if x := t.x; x != nil {
				// xsum.add's short path, inlined: one partial, a finite and exact sum.
				if len(x.lo) == 0 {
					s := x.hi + v
					bb := s - x.hi
					if s-s == 0 && (x.hi-(s-bb))+(v-bb) == 0 {
						x.hi = s
						x.n++
						continue
					}
				}
				x.add(v)
				continue
			}
			t.g.v = v
			if v2 {
				t.g.ts = math.Float64frombits(binary.LittleEndian.Uint64(data[off+8:]))
			}
		}
		n += count
		if n >= ctxEvery {
			n = 0
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	return nil
}

// readPlanned is a warm read through r.plan: ok false when the plan does not apply (the caller
// drops it and reads in full).
func (r *Reader) readPlanned(ctx context.Context, dir string, dfd int, dst *syscall.Stat_t, jobs []*fileState, fold func(*fileState) bool, snap *Snapshot) (ok bool, err error) {
	p := r.plan
	if !p.usable(jobs, fold) {
		return false, nil
	}
	if r.opts.MaxBytes > 0 && r.store.used+p.bytes > r.opts.MaxBytes {
		return true, fetch.Errorf(fetch.ReasonTooLarge, "%s holds more than the %d byte limit", dir, r.opts.MaxBytes)
	}
	if r.opts.MaxEntries > 0 && r.store.entries+p.entries > r.opts.MaxEntries {
		return true, fetch.Errorf(fetch.ReasonTooLarge, "%s holds more than the %d entry limit", dir, r.opts.MaxEntries)
	}
	if err := p.run(ctx, dfd, dst); err != nil {
		if errors.Is(err, errPlanFault) || errors.Is(err, errPlanStale) {
			return false, nil
		}
		return true, fetch.Errorf(fetch.ReasonTimeout, "reading %s: %w", dir, err)
	}
	m := p.m
	m.epoch = r.epoch
	for _, k := range m.keys {
		k.merge.epoch = r.epoch
		k.used.Store(r.epoch)
	}
	snap.Files = make([]FileInfo, 0, len(p.files))
	for i := range p.files {
		f := &p.files[i]
		info := f.info
		info.Alive = f.fs.alive
		f.fs.info = info
		f.fs.foreign = false
		snap.Files = append(snap.Files, info)
	}
	snap.Entries, snap.Bytes = p.entries, p.bytes
	snap.Dropped[EntryReasonBadKey] += p.bad
	snap.Dropped[EntryReasonKeyTooLong] += p.long
	return true, nil
}
