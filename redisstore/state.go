package redisstore

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/wsgi-exporter/wsgi_exporter/multiproc"
)

// What a store keeps between reads.
//
// A .db file is never shortened while its application runs: the counts of a worker stay in
// the merge after the worker went idle or died. The Redis store loses them when their keys
// expire (the writer refreshes a key's TTL only when it writes that key: an idle worker's
// keys, and a histogram's rarely hit buckets even in a busy worker, expire) or are deleted;
// the merged counter then falls, which Prometheus takes for a reset. To keep the merge what
// the files would give, the last value of a vanished counter, histogram or summary entry
// keeps counting:
//   - held, per worker, for the resume window: when the key comes back (the worker writes
//     its whole value again), the held value gives way to it if the new value is not lower
//     (the same worker resumed); if it is lower (a new process with a reused pid, or keys
//     deleted and written afresh), the held value is folded;
//   - then folded into a total per series, for as long as the store is read.
//
// A value lower than the one of the previous read (for a counter, a bucket or a summary's
// count) is folded the same way, and so is the _sum of that series at the same read.
// Gauges are not kept: a vanished gauge is gone, as with the Python sidecar.

type role uint8

const (
	roleOther role = iota // gauges, and samples the merge drops
	roleMono              // counter _total, histogram bucket, summary _count: never fall
	roleSum               // histogram and summary _sum: may fall (negative observations)
)

// entry is a metric key's metadata, as read once, and what the latest reads saw of it.
type entry struct {
	name  string // the metric key's name
	file  multiproc.FileName
	db    string // file.DBName(): the merge order
	raw   string // original_key
	key   *multiproc.Key
	role  role
	last  float64 // the value of the latest read that met it
	ts    float64 // and its timestamp
	has   bool
	seen  uint64 // the latest read that met it
	known bool   // in state.known
	hold  *held  // set while held
	// queued is the read whose scan queued it (a scan may return a name twice).
	queued uint64
}

func newEntry(name string, n Name, raw string, k *multiproc.Key) *entry {
	f := multiproc.FileName{Type: n.Type, Mode: n.Mode, ID: n.PID, PIDLabel: n.PID}
	return &entry{name: name, file: f, db: f.DBName(), raw: raw, key: k, role: roleOf(k, n.Type)}
}

func roleOf(k *multiproc.Key, typ string) role {
	switch typ {
	case multiproc.TypeCounter:
		if k.Sample == k.Metric+"_total" {
			return roleMono
		}
	case multiproc.TypeSummary:
		switch k.Sample {
		case k.Metric + "_count":
			return roleMono
		case k.Metric + "_sum":
			return roleSum
		}
	case multiproc.TypeHistogram:
		if slices.ContainsFunc(k.Labels, func(l multiproc.Label) bool { return l.Name == "le" }) {
			return roleMono
		}
		if k.Sample == k.Metric+"_sum" {
			return roleSum
		}
	}
	return roleOther
}

// seriesID names the series of an entry within its worker: buckets and _sum of one
// histogram series share it.
func (e *entry) seriesID() string {
	var b strings.Builder
	b.WriteString(e.db)
	b.WriteByte(0)
	b.WriteString(e.key.Metric)
	for _, l := range e.key.Labels {
		if l.Name == "le" {
			continue
		}
		b.WriteByte(0)
		b.WriteString(l.Name)
		b.WriteByte(1)
		b.WriteString(l.Value)
	}
	return b.String()
}

type held struct {
	e     *entry
	v     float64
	since time.Time
}

type foldKey struct{ typ, raw string }

type folded struct {
	key *multiproc.Key
	v   float64
}

type state struct {
	epoch   uint64
	known   map[string]*entry // by metric key name
	held    map[string]*held  // by metric key name
	folded  map[foldKey]*folded
	keys    map[string]keyRef // parsed original keys
	badKeys map[string]struct{}

	// order is every known and held entry in merge order, sorted again only when the
	// entries change (workers or series come or go), not at every read.
	order []*entry
	dirty bool

	maxFolded int
}

func newState(maxFolded int) *state {
	return &state{known: map[string]*entry{}, held: map[string]*held{}, folded: map[foldKey]*folded{},
		keys: map[string]keyRef{}, badKeys: map[string]struct{}{}, maxFolded: maxFolded}
}

// lookup returns the entry of a key name met before (read or held), or nil.
func (st *state) lookup(name string) *entry {
	if e := st.known[name]; e != nil {
		return e
	}
	if h := st.held[name]; h != nil {
		return h.e
	}
	return nil
}

// keyRef is a parsed original key and one copy of its text, shared by the workers' entries.
type keyRef struct {
	k   *multiproc.Key
	raw string
}

// key parses an original key once; nil for one that is not a prometheus_client key. It
// returns the text kept for it, which entries hold instead of their own copy.
func (st *state) key(raw string) (*multiproc.Key, string) {
	if r, ok := st.keys[raw]; ok {
		return r.k, r.raw
	}
	if _, bad := st.badKeys[raw]; bad {
		return nil, ""
	}
	k, err := multiproc.ParseKey([]byte(raw))
	if err != nil {
		if len(st.badKeys) >= 10000 {
			clear(st.badKeys)
		}
		st.badKeys[raw] = struct{}{}
		return nil, ""
	}
	st.keys[raw] = keyRef{k, raw}
	return k, raw
}

// finish updates the kept values with a successful read and merges it.
func (st *state) finish(r *read, o Options) {
	now := o.Now()
	snap := r.snap
	st.epoch = r.epoch
	keep := !o.DropVanished
	var reset map[string]bool
	for i := range r.live {
		l := &r.live[i]
		e := l.e
		e.seen = st.epoch
		if !e.known {
			st.known[e.name] = e
			e.known = true
			if e.hold == nil {
				st.dirty = true // new: not in order yet
			}
		}
		l.prev, l.hasPv = e.last, e.has
		if h := e.hold; h != nil {
			l.prev, l.hasPv = h.v, true
			delete(st.held, e.name)
			e.hold = nil
		}
		e.last, e.ts, e.has = l.v, l.ts, true
		if keep && e.role == roleMono && l.hasPv && l.v < l.prev {
			st.fold(e, l.prev, snap)
			if reset == nil {
				reset = map[string]bool{}
			}
			reset[e.seriesID()] = true
		}
	}
	if reset != nil {
		for i := range r.live {
			l := &r.live[i]
			if l.e.role == roleSum && l.hasPv && reset[l.e.seriesID()] {
				st.fold(l.e, l.prev, snap)
			}
		}
	}
	if len(st.known) > len(r.live) {
		for name, e := range st.known {
			if e.seen == st.epoch {
				continue
			}
			delete(st.known, name)
			e.known = false
			if keep && e.role != roleOther && e.has {
				h := &held{e: e, v: e.last, since: now}
				st.held[name], e.hold = h, h
			} else {
				st.dirty = true // leaves the order
			}
		}
	}
	st.expire(now, o, snap)

	if st.dirty {
		st.order = st.order[:0]
		for _, e := range st.known {
			st.order = append(st.order, e)
		}
		for _, h := range st.held {
			st.order = append(st.order, h.e)
		}
		// The order of a sorted multiprocess directory: by file name, then (as the order of
		// a file's entries is not kept in Redis) by key.
		slices.SortFunc(st.order, func(a, b *entry) int {
			if c := strings.Compare(a.db, b.db); c != 0 {
				return c
			}
			return strings.Compare(a.raw, b.raw)
		})
		st.dirty = false
	}
	m := multiproc.NewMerger()
	for _, e := range st.order {
		if h := e.hold; h != nil {
			m.Add(e.key, &e.file, h.v, 0)
		} else {
			m.Add(e.key, &e.file, e.last, e.ts)
		}
	}
	fks := make([]foldKey, 0, len(st.folded))
	for k := range st.folded {
		fks = append(fks, k)
	}
	slices.SortFunc(fks, func(a, b foldKey) int {
		return cmp.Or(strings.Compare(a.typ, b.typ), strings.Compare(a.raw, b.raw))
	})
	for _, k := range fks {
		f := st.folded[k]
		m.Add(f.key, &multiproc.FileName{Type: k.typ, ID: "folded"}, f.v, 0)
	}
	fams, dropped := m.Finish()
	snap.Families = fams
	for reason, n := range dropped {
		snap.Dropped[reason] += n
	}
	snap.Entries = len(st.order) + len(fks)
	snap.Held, snap.Folded = len(st.held), len(st.folded)
	st.prune()
}

// expire folds the held values past the resume window, and the oldest ones beyond the cap.
func (st *state) expire(now time.Time, o Options, snap *Snapshot) {
	for name, h := range st.held {
		if now.Sub(h.since) >= o.ResumeWindow {
			st.unhold(name, h, snap)
		}
	}
	if over := len(st.held) - o.MaxKeys; over > 0 {
		names := make([]string, 0, len(st.held))
		for name := range st.held {
			names = append(names, name)
		}
		slices.SortFunc(names, func(a, b string) int {
			return cmp.Or(st.held[a].since.Compare(st.held[b].since), strings.Compare(a, b))
		})
		for _, name := range names[:over] {
			st.unhold(name, st.held[name], snap)
		}
	}
}

// unhold folds a held value and forgets the entry.
func (st *state) unhold(name string, h *held, snap *Snapshot) {
	st.fold(h.e, h.v, snap)
	delete(st.held, name)
	h.e.hold = nil
	st.dirty = true
}

// fold adds a vanished value to its series' total.
func (st *state) fold(e *entry, v float64, snap *Snapshot) {
	k := foldKey{e.file.Type, e.raw}
	f := st.folded[k]
	if f == nil {
		if len(st.folded) >= st.maxFolded {
			snap.Dropped[ReasonStateFull]++
			return
		}
		f = &folded{key: e.key}
		st.folded[k] = f
	}
	f.v += v
}

// prune forgets parsed keys no entry uses once they are many.
func (st *state) prune() {
	if len(st.keys) <= 2*(len(st.known)+len(st.held)+len(st.folded))+1024 {
		return
	}
	used := make(map[string]keyRef, len(st.known))
	for _, e := range st.known {
		used[e.raw] = keyRef{e.key, e.raw}
	}
	for _, h := range st.held {
		used[h.e.raw] = keyRef{h.e.key, h.e.raw}
	}
	for k, f := range st.folded {
		used[k.raw] = keyRef{f.key, k.raw}
	}
	st.keys = used
}
