package multiproc

import (
	"syscall"
)

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
func (r *Reader) keep(name string, prev, now *cached) {
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
	for _, c := range r.cache {
		r.unmap(c)
	}
	clear(r.cache)
}

// resolveKeys turns a file's entries into parsed keys, parsing only keys never seen before.
//
// data may be a shared mapping that faults (a panic, recovered by readFile) when the file is
// truncated under us. No lock is ever held across a read of data without a deferred unlock:
// a fault must not leave keysMu held, or every later read and forget would block on it.
func (r *Reader) resolveKeys(data []byte, used int, gen Generation, lay *layout, res *fileResult) []fileEntry {
	entries := r.getEntries(used/64 + 16)
	var offs []int32
	var missing []int
	var raws []string // copies of the missing keys' bytes, taken outside any lock
	known := lay.keys
	changed := false
	Entries(data, used, gen, func(e Entry) {
		i := len(entries)
		offs = append(offs, int32(e.ValueAt))
		if i < len(known) {
			if k := known[i]; k != nil && len(k.raw) == len(e.Key) && k.raw == string(e.Key) {
				entries = append(entries, fileEntry{k, e.Value, e.Timestamp})
				return
			}
		}
		changed = true
		k := r.lookupKey(e.Key)
		if k == nil {
			missing = append(missing, i)
			raws = append(raws, string(e.Key))
		}
		entries = append(entries, fileEntry{k, e.Value, e.Timestamp})
	})
	for j, i := range missing {
		k := r.resolveKey(raws[j])
		if k == nil {
			res.bad++
		}
		entries[i].key = k
	}
	if len(lay.keys) != len(entries) || changed {
		lay.keys = lay.keys[:0]
		for _, e := range entries {
			lay.keys = append(lay.keys, e.key)
		}
	}
	lay.offs = offs
	return entries
}

// lookupKey returns the parsed key of raw, or nil. raw may be mapped bytes that fault: the
// deferred unlock releases keysMu while the panic unwinds.
func (r *Reader) lookupKey(raw []byte) *Key {
	r.keysMu.RLock()
	defer r.keysMu.RUnlock()
	return r.keys[string(raw)]
}

// resolveKey parses a key not found by lookupKey (raw is a copy, not mapped bytes) and
// remembers it, or the error that makes it bad; nil for a bad key.
func (r *Reader) resolveKey(raw string) *Key {
	r.keysMu.RLock()
	k, known := r.keys[raw]
	_, bad := r.badKeys[raw]
	r.keysMu.RUnlock()
	if known || bad {
		return k
	}
	k, err := ParseKey([]byte(raw))
	r.keysMu.Lock()
	defer r.keysMu.Unlock()
	if err != nil {
		if len(r.badKeys) < 10000 {
			r.badKeys[raw] = err
		}
		return nil
	}
	if k2 := r.keys[raw]; k2 != nil {
		return k2
	}
	r.keys[raw] = k
	return k
}

// forget drops keys not seen in this read once they outnumber the live ones, so label
// churn does not grow memory without bound.
func (r *Reader) forget() {
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
