package multiproc

// The store holds what the files of dead writers contributed to the merge. A file whose
// writer is gone never changes again, so it is read once, its entries are folded into the
// store's families (exact sums, and each gauge mode's partial result), and the file is not
// touched again (no stat, no mapping, no liveness check) until the directory listing or a
// periodic recheck says it went away, was replaced, or its pid lives again (see Reader).
// Then its contribution is taken back: sums exactly (xsum), the order-dependent gauge
// partials and a family's first and last entries by folding the family again from the
// entries the store keeps of each file.
type store struct {
	gen   uint64 // bumped by reset: the keys' cached pointers into the store die
	fams  map[famKey]*famState
	files map[string]*foldedFile
	ids   map[string]int // folded files per writer id
	dirty map[famKey]bool

	entries int   // entries folded
	bad     int   // of which with a key that is not valid
	long    int   // of which with a key over the length cap
	used    int64 // the folded files' used bytes
	types   map[string]*TypeStats
}

// foldedFile is what the store keeps of a file.
type foldedFile struct {
	name    string
	fn      FileName
	ino     uint64
	size    int64
	used    int
	gen     Generation
	mtime   int64 // nanoseconds, at the read that folded it
	ctime   int64
	entries []foldedEntry
	bad     int
	long    int
}

type foldedEntry struct {
	key   *Key // nil: a bad key, or one over the length cap
	v, ts float64
}

func newStore(gen uint64) *store {
	return &store{gen: gen, fams: map[famKey]*famState{}, files: map[string]*foldedFile{},
		ids: map[string]int{}, dirty: map[famKey]bool{}, types: map[string]*TypeStats{}}
}

// fold adds a file's entries.
func (st *store) fold(f *foldedFile) {
	if old := st.files[f.name]; old != nil {
		st.takeBack(old.name)
	}
	st.files[f.name] = f
	st.ids[f.fn.ID]++
	st.count(f, 1)
	for i := range f.entries {
		if k := f.entries[i].key; k != nil {
			k.refs.Add(1)
			st.add(k, f, i)
		}
	}
}

func (st *store) count(f *foldedFile, sign int) {
	st.entries += sign * len(f.entries)
	st.bad += sign * f.bad
	st.long += sign * f.long
	st.used += int64(sign * f.used)
	t := st.types[f.fn.Type]
	if t == nil {
		t = &TypeStats{}
		st.types[f.fn.Type] = t
	}
	t.Files += sign
	t.DeadFiles += sign
	t.Size += int64(sign) * f.size
	t.Used += int64(sign * f.used)
}

// takeBack removes a folded file's contribution and returns the file (nil if not folded).
func (st *store) takeBack(name string) *foldedFile {
	f := st.files[name]
	if f == nil {
		return nil
	}
	delete(st.files, name)
	if st.ids[f.fn.ID]--; st.ids[f.fn.ID] <= 0 {
		delete(st.ids, f.fn.ID)
	}
	st.count(f, -1)
	for i := range f.entries {
		if k := f.entries[i].key; k != nil {
			k.refs.Add(-1)
			st.sub(k, f, i)
		}
	}
	return f
}

// resolve finds (or makes) the family and series an entry of k in a file f goes to.
func (st *store) resolve(k *Key, f *foldedFile, at pos) *mergeCache {
	c := &k.fold
	typ := f.fn.Type
	if c.epoch == st.gen && c.typ == typ && c.fam != nil && !c.fam.gone && (c.series == nil || !c.series.gone) {
		return c
	}
	*c = mergeCache{epoch: st.gen, typ: typ}
	fk := famKey{k.Metric, typ}
	fam := st.fams[fk]
	if fam == nil {
		fam = newFam(fk, k.Help, at)
		fam.mode = f.fn.Mode
		st.fams[fk] = fam
	}
	c.fam = fam
	role, id, labels := roleOf(k, typ)
	c.role = role
	if role != roleDrop {
		c.series = fam.seriesFor(id, labels)
		if role == roleGauge && c.series.g == nil {
			c.series.g = &gaugeParts{}
		}
	}
	return c
}

func (st *store) add(k *Key, f *foldedFile, i int) {
	e := &f.entries[i]
	at := pos{f.name, int32(i)}
	c := st.resolve(k, f, at)
	fam := c.fam
	fam.n++
	if at.before(fam.first) {
		fam.first, fam.help = at, k.Help
	}
	if f.fn.Type == TypeGauge && fam.last.before(at) {
		fam.last, fam.mode = at, f.fn.Mode
	}
	s := c.series
	switch c.role {
	case roleValue:
		s.value.add(e.v)
	case roleCount:
		s.count.add(e.v)
	case roleSum:
		s.sum.add(e.v)
	case roleBucket:
		s.bucket(k.le).add(e.v)
	case roleGauge:
		s.g.add(e.v, e.ts, at, f.fn.PIDLabel)
	default:
		fam.bad++
	}
}

// sub takes back one entry. Sums are taken back exactly; what cannot be (gauge partials, an
// overflowed sum, the family's first or last entry) marks the family for folding again.
func (st *store) sub(k *Key, f *foldedFile, i int) {
	e := &f.entries[i]
	c := st.resolve(k, f, pos{f.name, int32(i)})
	fam := c.fam
	fam.n--
	if fam.first.file == f.name || (f.fn.Type == TypeGauge && fam.last.file == f.name) {
		st.dirty[fam.key] = true
	}
	s := c.series
	var x *xsum
	switch c.role {
	case roleValue:
		x = &s.value
	case roleCount:
		x = &s.count
	case roleSum:
		x = &s.sum
	case roleBucket:
		for j := range s.buckets {
			if s.buckets[j].le == k.le {
				x = &s.buckets[j].n
				x.sub(e.v)
				if x.ovf {
					st.dirty[fam.key] = true
				}
				if x.n == 0 {
					s.buckets = append(s.buckets[:j], s.buckets[j+1:]...)
				}
				x = nil
				break
			}
		}
	case roleGauge:
		st.dirty[fam.key] = true
	default:
		fam.bad--
	}
	if x != nil {
		x.sub(e.v)
		if x.ovf {
			st.dirty[fam.key] = true
		}
	}
	if s != nil && s.g == nil && s.value.n == 0 && s.count.n == 0 && s.sum.n == 0 && len(s.buckets) == 0 {
		fam.dropSeries(s)
	}
	if fam.n == 0 {
		st.dropFam(fam)
	}
}

func (f *famState) dropSeries(s *seriesState) {
	if f.series[s.id] != s {
		return
	}
	delete(f.series, s.id)
	s.gone = true
	last := f.list[len(f.list)-1]
	f.list[s.at] = last
	last.at = s.at
	f.list = f.list[:len(f.list)-1]
}

func (st *store) dropFam(f *famState) {
	f.gone = true
	delete(st.fams, f.key)
	delete(st.dirty, f.key)
}

// settle folds the families marked dirty again from the entries of the store's files.
func (st *store) settle() {
	if len(st.dirty) == 0 {
		return
	}
	names := map[string]map[string]bool{} // by type
	for k := range st.dirty {
		if f := st.fams[k]; f != nil {
			st.dropFam(f)
		}
		if names[k.typ] == nil {
			names[k.typ] = map[string]bool{}
		}
		names[k.typ][k.name] = true
	}
	clear(st.dirty)
	for _, f := range st.files {
		want := names[f.fn.Type]
		if want == nil {
			continue
		}
		for i := range f.entries {
			if k := f.entries[i].key; k != nil && want[k.Metric] {
				st.add(k, f, i)
			}
		}
	}
}

// drop empties the store (the directory was replaced).
func (st *store) drop() {
	for _, f := range st.files {
		for i := range f.entries {
			if k := f.entries[i].key; k != nil {
				k.refs.Add(-1)
			}
		}
	}
	*st = *newStore(st.gen + 1)
}

// stats says what the store holds.
func (st *store) stats() StoreStats {
	s := StoreStats{Files: len(st.files), Processes: len(st.ids), Entries: st.entries, Used: st.used}
	return s
}
