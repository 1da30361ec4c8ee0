package multiproc

import (
	"context"
	"slices"
	"syscall"
	"unsafe"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// layout is what a file held at the last read: its entries' keys in order. Files only grow
// by appending, so the next read checks each key against the bytes (a compare, not a hash
// and map probe) and looks up only what changed.
type layout struct {
	ino  uint64
	used int
	gen  Generation
	keys []*Key  // nil for a bad key, longKey for one over the length cap
	offs []int32 // where each entry's value is
}

// longKey stands in a layout for a key over Options.MaxKeyBytes.
var longKey = &Key{}

// maxMapped bounds the files kept mapped (the kernel's default vm.max_map_count is 65530).
const maxMapped = 16384

// cached is what a reader keeps of a file between reads.
type cached struct {
	ino  uint64
	data []byte // the file mapped read-only, or nil
	lay  *layout
}

// keep records what a file's read left for the next one, and unmaps a mapping it replaced.
func (r *Reader) keep(fs *fileState, now *cached) {
	prev := fs.c
	same := prev != nil && now != nil && prev.data != nil && now.data != nil && &now.data[0] == &prev.data[0]
	if prev != nil && prev.data != nil && !same {
		r.unmap(prev)
	}
	if now != nil && now.data != nil && !same {
		r.mapCount++
	}
	fs.c = now
}

func (r *Reader) unmap(c *cached) {
	if c != nil && c.data != nil {
		_ = syscall.Munmap(c.data)
		c.data = nil
		r.mapCount--
	}
}

// Close unmaps every file the reader keeps mapped.
func (r *Reader) Close() {
	r.sem <- struct{}{}
	defer func() { <-r.sem }()
	for _, fs := range r.files {
		if fs.c != nil {
			r.unmap(fs.c)
			fs.c = nil
		}
	}
}

// resolveKeys turns a file's entries into parsed keys, parsing only keys never seen before.
// It stops, with an error, when ctx ends or the read goes over its entry or series budget.
//
// data may be a shared mapping that faults (a panic, recovered by readFile) when the file is
// truncated under us. No lock is ever held across a read of data without a deferred unlock
// (a fault must not leave keysMu held, or every later read and forget would block on it), and
// a key is parsed from a copy of its bytes, never from the mapping.
//
// res.parsed tells whether the entries' keys differ from prev (the keys of the file's last
// read; a bad key counts as the same bad key).
func (r *Reader) resolveKeys(ctx context.Context, data []byte, used int, gen Generation, lay *layout, prev []*Key, res *fileResult, bud *budget) ([]fileEntry, error) {
	entries := r.getEntries(used/64 + 16)
	offs := make([]int32, 0, len(lay.keys)) // a file only grows: the last read's count, or more
	known := lay.keys
	changed := false
	var stop error
	maxKey := r.opts.MaxKeyLength
	walkEntries(data, used, gen, func(e Entry) bool {
		i := len(entries)
		if i%ctxEvery == 0 && i > 0 {
			if stop = ctx.Err(); stop == nil {
				stop = r.spend(bud, ctxEvery)
			}
			if stop == nil {
				stop = bud.err()
			}
			if stop != nil {
				return false
			}
		}
		offs = append(offs, int32(e.ValueAt))
		if i < len(known) {
			if k := known[i]; k != nil && k != longKey && len(k.raw) == len(e.Key) && k.raw == string(e.Key) {
				entries = append(entries, fileEntry{k, e.Value, e.Timestamp})
				return true
			}
		}
		changed = true
		var k *Key
		switch {
		case maxKey > 0 && len(e.Key) > maxKey:
			k = longKey
		default:
			var bad bool
			k, bad = r.lookupKey(e.Key)
			if k == nil && !bad {
				if k, stop = r.resolveKey(string(e.Key), bud); stop != nil {
					return false
				}
			}
		}
		entries = append(entries, fileEntry{k, e.Value, e.Timestamp})
		return true
	})
	if stop == nil {
		stop = r.spend(bud, len(entries)%ctxEvery)
	}
	res.parsed = len(prev) != len(entries)
	for i := 0; i < len(entries) && !res.parsed; i++ {
		res.parsed = prev[i] != entries[i].key
	}
	if stop != nil {
		r.putEntries(entries)
		return nil, stop
	}
	if len(lay.keys) != len(entries) || changed {
		if cap(lay.keys) < len(entries) {
			lay.keys = make([]*Key, 0, len(entries))
		}
		lay.keys = lay.keys[:0]
		for _, e := range entries {
			lay.keys = append(lay.keys, e.key)
		}
	}
	if cap(offs) > len(offs)+len(offs)/8+8 {
		offs = slices.Clone(offs) // kept between reads: without append's room to grow
	}
	lay.offs = offs
	for i := range entries {
		switch entries[i].key {
		case nil:
			res.bad++
		case longKey:
			entries[i].key = nil
			res.long++
		}
	}
	return entries, nil
}

func (r *Reader) putEntries(e []fileEntry) {
	if cap(e) <= 1<<20 {
		e = e[:0]
		r.entryPool.Put(&e)
	}
}

// lookupKey returns the parsed key of raw, or nil and whether raw is a known bad key. raw
// may be mapped bytes that fault: the deferred unlock releases keysMu while the panic unwinds.
func (r *Reader) lookupKey(raw []byte) (*Key, bool) {
	r.keysMu.RLock()
	defer r.keysMu.RUnlock()
	if k := r.keys[string(raw)]; k != nil {
		return k, false
	}
	_, bad := r.badKeys[string(raw)]
	return nil, bad
}

// Bad keys are remembered (so a bad key is parsed once) up to these bounds.
const (
	maxBadKeys     = 10000
	maxBadKeyBytes = 1 << 20
)

// resolveKey parses a key not found by lookupKey (raw is a copy, not mapped bytes) and
// remembers it, or the error that makes it bad; nil for a bad key. A key that would take the
// reader over Options.MaxSeries keys is an error (too_large), once the keys no file of the
// last read used are forgotten.
func (r *Reader) resolveKey(raw string, bud *budget) (*Key, error) {
	r.keysMu.RLock()
	k, known := r.keys[raw]
	_, bad := r.badKeys[raw]
	r.keysMu.RUnlock()
	if known || bad {
		return k, nil
	}
	k, err := parseKey(unsafe.Slice(unsafe.StringData(raw), len(raw)), raw)
	r.keysMu.Lock()
	defer r.keysMu.Unlock()
	if err != nil {
		if len(r.badKeys) < maxBadKeys && r.badKeyBytes+len(raw) <= maxBadKeyBytes {
			r.badKeys[raw] = err
			r.badKeyBytes += len(raw)
		}
		return nil, nil
	}
	if k2 := r.keys[raw]; k2 != nil {
		return k2, nil
	}
	over := func() bool {
		return (r.opts.MaxSeries > 0 && len(r.keys) >= r.opts.MaxSeries) ||
			(r.opts.MaxKeyBytes > 0 && r.keyBytes+int64(len(raw)) > r.opts.MaxKeyBytes)
	}
	if over() {
		r.evictLocked()
		if over() {
			return nil, bud.fail(fetch.Errorf(fetch.ReasonTooLarge, "over the limit of %d series (distinct keys) or %d key bytes", r.opts.MaxSeries, r.opts.MaxKeyBytes))
		}
	}
	r.keys[raw] = k
	r.keyBytes += int64(len(raw))
	if r.keyHook != nil {
		r.keyHook(len(r.keys))
	}
	return k, nil
}

// evictLocked forgets the keys that neither the last merge nor the store used (keysMu held).
func (r *Reader) evictLocked() {
	for s, k := range r.keys {
		if k.used.Load() < r.epoch-1 && k.refs.Load() == 0 {
			delete(r.keys, s)
			r.keyBytes -= int64(len(s))
		}
	}
}

// forget drops keys not seen in this read (and not held by the store) once they outnumber
// the live ones, so label churn does not grow memory without bound.
func (r *Reader) forget() {
	r.keysMu.Lock()
	defer r.keysMu.Unlock()
	live := 0
	for _, k := range r.keys {
		if k.used.Load() == r.epoch || k.refs.Load() > 0 {
			live++
		}
	}
	if len(r.keys) > 2*live+1024 {
		for s, k := range r.keys {
			if k.used.Load() != r.epoch && k.refs.Load() == 0 {
				delete(r.keys, s)
				r.keyBytes -= int64(len(s))
			}
		}
	}
	if len(r.badKeys) >= maxBadKeys || r.badKeyBytes >= maxBadKeyBytes {
		clear(r.badKeys)
		r.badKeyBytes = 0
	}
}
