package multiproc

import (
	"cmp"
	"slices"
)

// Family is one merged metric family, as prometheus_client's MultiProcessCollector builds it.
type Family struct {
	Name   string // the metric's name; counters' samples are Name + "_total"
	Help   string // from the first entry met, in sorted file-name order
	Type   string // TypeCounter, TypeGauge, TypeHistogram or TypeSummary
	Mode   string // gauges: the mode of the last file that held the metric
	Series []Series
}

// Series is one merged series.
type Series struct {
	Labels []Label // sorted by name; gauges in all/liveall mode carry the file's pid
	Value  float64 // counters and gauges
	// Summaries and histograms.
	Count, Sum       float64
	HasCount, HasSum bool
	Buckets          []Bucket // histograms: ascending bounds, cumulative counts
}

// Bucket is a cumulative histogram bucket.
type Bucket struct {
	UpperBound float64
	Count      float64
}

const (
	roleDrop uint8 = iota
	roleValue
	roleCount
	roleSum
	roleBucket
	roleGauge
)

// pos is where an entry stands in the merge order: the files in name order, the entries of a
// file in file order. The store folds files in any order, so the order-dependent parts of
// the merge (a family's help, type and mode; min, max, mostrecent and all gauges) compare
// positions instead of relying on the order of additions.
type pos struct {
	file string
	idx  int32
}

func (p pos) before(q pos) bool {
	if p.file != q.file {
		return p.file < q.file
	}
	return p.idx < q.idx
}

// famKey names a family state: one per metric name and file type, so that the type of a
// name met in files of two types is decided at the end, by whichever came first.
type famKey struct{ name, typ string }

// mergeCache remembers where a key's entries go in one merge (a scrape's, or the store's).
type mergeCache struct {
	epoch  uint64
	typ    string
	fam    *famState
	series *seriesState
	role   uint8
}

type famState struct {
	key    famKey
	help   string // of the first entry
	first  pos
	mode   string // gauges: the mode of the last file
	last   pos
	n      int // entries, whatever their role
	bad    int // entries with a sample name the type does not have
	series map[string]*seriesState
	list   []*seriesState
	gauges []gaugeSample // a scrape's gauge samples, in merge order (the store keeps gaugeParts)
	all    *allLayout    // all-mode gauges without the store: the series, kept while the merge is
	gone   bool          // dropped from the store: cached pointers to it are stale
}

type seriesState struct {
	id      string
	labels  []Label
	value   xsum // counters
	count   xsum // summaries
	sum     xsum // summaries and histograms
	buckets []bucketState
	g       *gaugeParts // the store's gauges
	at      int         // index in its family's list
	mark    uint64      // the last merge that matched it with a live series
	gone    bool        // dropped from the store: cached pointers to it are stale
	// A recording merge's target ids (+1; 0: none yet) of value, count and sum.
	tValue, tCount, tSum int32
}

type bucketState struct {
	le float64
	n  xsum
	t  int32 // a recording merge's target id (+1; 0: none yet)
}

func (s *seriesState) bucket(le float64) *xsum {
	return &s.buckets[s.bucketIndex(le)].n
}

func (s *seriesState) bucketIndex(le float64) int {
	for i := range s.buckets {
		if s.buckets[i].le == le {
			return i
		}
	}
	s.buckets = append(s.buckets, bucketState{le: le})
	return len(s.buckets) - 1
}

type gaugeSample struct {
	s     *seriesState
	pid   string
	v, ts float64
	at    pos
}

func newFam(k famKey, help string, at pos) *famState {
	return &famState{key: k, help: help, first: at, last: at, series: map[string]*seriesState{}}
}

func (f *famState) seriesFor(id string, labels []Label) *seriesState {
	s := f.series[id]
	if s == nil {
		s = &seriesState{id: id, labels: labels, at: len(f.list)}
		f.series[id] = s
		f.list = append(f.list, s)
	}
	return s
}

// forgetMerge lets the keys forget the families and series of the last merge (a plan's, or
// the last full read's), which they point to until a merge resolves them again: a full read
// builds a new merge, and the last one's (its gauge samples, series states and accumulators,
// several MB for a large directory) can be collected meanwhile instead of after. The epochs
// stay (the keys' eviction reads them), and none is this read's: every key is resolved again.
func (r *Reader) forgetMerge() {
	r.keysMu.RLock()
	defer r.keysMu.RUnlock()
	for _, k := range r.keys {
		k.merge.fam, k.merge.series = nil, nil
	}
}

// roleOf says where an entry of key k in a file of type typ goes, and the identity and labels
// of its series.
func roleOf(k *Key, typ string) (role uint8, id string, labels []Label) {
	switch typ {
	case TypeCounter:
		if k.suffix == "_total" {
			return roleValue, k.labelsID, k.Labels
		}
	case TypeSummary:
		switch k.suffix {
		case "_count":
			return roleCount, k.labelsID, k.Labels
		case "_sum":
			return roleSum, k.labelsID, k.Labels
		}
	case TypeHistogram:
		switch {
		case k.hasLe && !k.leErr:
			return roleBucket, k.noLeID, k.noLe
		case !k.hasLe && k.suffix == "_sum":
			return roleSum, k.labelsID, k.Labels
		}
	case TypeGauge:
		if k.suffix == "" {
			return roleGauge, k.noPidID, k.noPid
		}
	}
	return roleDrop, "", nil
}

// merger merges one scrape's entries, fed in merge order.
type merger struct {
	epoch uint64
	fams  map[famKey]*famState
	order []*famState
	// sizes: gauge samples per family at the previous merge, to size the slices at once.
	sizes map[famKey]int

	// record: add returns each entry's target (see plan.go), and keys lists the keys met.
	record bool
	tgts   []tgtRef
	keys   []*Key
}

// tgtRef is where a recording merge put an entry: an accumulator of a series (value, count,
// sum or bucket i), or the gauge sample i of a family.
type tgtRef struct {
	s    *seriesState
	fam  *famState
	role uint8
	i    int32
}

// target returns the target id kept in *id, assigning the next one when there is none.
func (m *merger) target(id *int32, ref tgtRef) int32 {
	if *id == 0 {
		m.tgts = append(m.tgts, ref)
		*id = int32(len(m.tgts))
	}
	return *id - 1
}

func newMerger(epoch uint64, sizes map[famKey]int) *merger {
	return &merger{epoch: epoch, fams: map[famKey]*famState{}, sizes: sizes}
}

// gaugeSizes returns how many gauge samples each family had, for the next merge.
func (m *merger) gaugeSizes() map[famKey]int {
	out := map[famKey]int{}
	for _, f := range m.order {
		if len(f.gauges) > 0 {
			out[f.key] = len(f.gauges)
		}
	}
	return out
}

// add merges one entry of a file. A recording merge returns the entry's target id (-1: the
// entry is dropped); others return -1.
func (m *merger) add(k *Key, f *FileName, at pos, v, ts float64) int32 {
	c := &k.merge
	if c.epoch != m.epoch || c.typ != f.Type {
		m.resolve(k, f.Type, at)
	}
	fam := c.fam
	fam.n++
	if f.Type == TypeGauge {
		fam.mode, fam.last = f.Mode, at
	}
	s := c.series
	t := int32(-1)
	switch c.role {
	case roleValue:
		s.value.add(v)
		if m.record {
			t = m.target(&s.tValue, tgtRef{s: s, role: roleValue})
		}
	case roleCount:
		s.count.add(v)
		if m.record {
			t = m.target(&s.tCount, tgtRef{s: s, role: roleCount})
		}
	case roleSum:
		s.sum.add(v)
		if m.record {
			t = m.target(&s.tSum, tgtRef{s: s, role: roleSum})
		}
	case roleBucket:
		i := s.bucketIndex(k.le)
		s.buckets[i].n.add(v)
		if m.record {
			t = m.target(&s.buckets[i].t, tgtRef{s: s, role: roleBucket, i: int32(i)})
		}
	case roleGauge:
		fam.gauges = append(fam.gauges, gaugeSample{s, f.PIDLabel, v, ts, at})
		if m.record {
			m.tgts = append(m.tgts, tgtRef{fam: fam, role: roleGauge, i: int32(len(fam.gauges) - 1)})
			t = int32(len(m.tgts) - 1)
		}
	default:
		fam.bad++
	}
	return t
}

func (m *merger) resolve(k *Key, typ string, at pos) {
	c := &k.merge
	if m.record && c.epoch != m.epoch {
		m.keys = append(m.keys, k)
	}
	*c = mergeCache{epoch: m.epoch, typ: typ}
	k.used.Store(m.epoch)
	fk := famKey{k.Metric, typ}
	fam := m.fams[fk]
	if fam == nil {
		fam = newFam(fk, k.Help, at)
		if n := m.sizes[fk]; n > 0 {
			fam.gauges = make([]gaugeSample, 0, n)
		}
		m.fams[fk] = fam
		m.order = append(m.order, fam)
	}
	c.fam = fam
	role, id, labels := roleOf(k, typ)
	c.role = role
	if role != roleDrop {
		c.series = fam.seriesFor(id, labels)
	}
}

// famPair is a family's state in this scrape's merge and in the store.
type famPair struct {
	live, fold *famState
	first      pos
}

func (p *famPair) help() string {
	if p.fold != nil && (p.live == nil || p.fold.first.before(p.live.first)) {
		return p.fold.help
	}
	return p.live.help
}

func (p *famPair) mode() string {
	if p.fold != nil && (p.live == nil || p.live.last.before(p.fold.last)) {
		return p.fold.mode
	}
	return p.live.mode
}

func (p *famPair) entries() (n, bad int) {
	for _, f := range [2]*famState{p.live, p.fold} {
		if f != nil {
			n += f.n
			bad += f.bad
		}
	}
	return n, bad
}

// finish merges the scrape's families with the store's (nil: none) into families as
// MultiProcessCollector builds them, in the order their names were first met, and counts
// the entries it leaves out in dropped: a name in files of two types keeps the type of its
// first entry (the others are type_conflict), samples a type does not have are bad_sample.
func (m *merger) finish(st *store, dropped map[string]int) []Family {
	pairs := make(map[famKey]*famPair, len(m.order))
	var list []*famPair
	for _, f := range m.order {
		p := &famPair{live: f, first: f.first}
		pairs[f.key] = p
		list = append(list, p)
	}
	if st != nil {
		for k, f := range st.fams {
			if p := pairs[k]; p != nil {
				p.fold = f
				if f.first.before(p.first) {
					p.first = f.first
				}
				continue
			}
			p := &famPair{fold: f, first: f.first}
			pairs[k] = p
			list = append(list, p)
		}
	}
	// The type of a name is that of its first entry.
	win := make(map[string]*famPair, len(list))
	for _, p := range list {
		if w := win[p.key().name]; w == nil || p.first.before(w.first) {
			win[p.key().name] = p
		}
	}
	var tmp xsum
	out := make([]Family, 0, len(win))
	firsts := make([]pos, 0, len(win))
	for _, p := range list {
		n, bad := p.entries()
		if win[p.key().name] != p {
			dropped[EntryReasonTypeClash] += n
			continue
		}
		dropped[EntryReasonBadSample] += bad
		k := p.key()
		f := Family{Name: k.name, Help: p.help(), Type: k.typ}
		if k.typ == TypeGauge {
			f.Mode = p.mode()
			f.Series = m.gaugeSeries(p.live, p.fold, f.Mode)
		} else {
			f.Series = m.series(p.live, p.fold, k.typ, &tmp)
		}
		out = append(out, f)
		firsts = append(firsts, p.first)
	}
	idx := make([]int, len(out))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		switch {
		case firsts[a].before(firsts[b]):
			return -1
		case firsts[b].before(firsts[a]):
			return 1
		}
		return 0
	})
	sorted := make([]Family, len(out))
	for i, j := range idx {
		sorted[i] = out[j]
	}
	return sorted
}

func (p *famPair) key() famKey {
	if p.live != nil {
		return p.live.key
	}
	return p.fold.key
}

// total returns the rounded sum of a and b (b may be nil); tmp is scratch space.
func total(a, b *xsum, tmp *xsum) (float64, bool) {
	if b == nil || b.n == 0 {
		return a.value(), a.n > 0
	}
	if a == nil || a.n == 0 {
		return b.value(), b.n > 0
	}
	tmp.lo = append(tmp.lo[:0], b.lo...)
	tmp.hi, tmp.n, tmp.nan, tmp.pinf, tmp.ninf, tmp.ovf = b.hi, b.n, b.nan, b.pinf, b.ninf, b.ovf
	tmp.addSum(a)
	return tmp.value(), tmp.n > 0
}

// series merges the counter, summary or histogram series of a family.
func (m *merger) series(live, fold *famState, typ string, tmp *xsum) []Series {
	var out []Series
	emit := func(a, b *seriesState) {
		s := Series{}
		if a != nil {
			s.Labels = a.labels
		} else {
			s.Labels = b.labels
		}
		part := func(get func(*seriesState) *xsum) (float64, bool) {
			var x, y *xsum
			if a != nil {
				x = get(a)
			}
			if b != nil {
				y = get(b)
			}
			if x == nil {
				x, y = y, nil
			}
			return total(x, y, tmp)
		}
		switch typ {
		case TypeCounter:
			s.Value, _ = part(func(s *seriesState) *xsum { return &s.value })
		case TypeSummary:
			s.Count, s.HasCount = part(func(s *seriesState) *xsum { return &s.count })
			s.Sum, s.HasSum = part(func(s *seriesState) *xsum { return &s.sum })
		case TypeHistogram:
			s.Sum, s.HasSum = part(func(s *seriesState) *xsum { return &s.sum })
			s.Buckets = buckets(a, b, tmp)
			if len(s.Buckets) > 0 {
				s.Count, s.HasCount = s.Buckets[len(s.Buckets)-1].Count, true
			}
		}
		out = append(out, s)
	}
	if live != nil {
		out = make([]Series, 0, len(live.list))
		for _, s := range live.list {
			var f *seriesState
			if fold != nil {
				if f = fold.series[s.id]; f != nil {
					f.mark = m.epoch
				}
			}
			emit(s, f)
		}
	}
	if fold != nil {
		for _, f := range fold.list {
			if live == nil || f.mark != m.epoch {
				emit(nil, f)
			}
		}
	}
	return out
}

// buckets merges the bucket sums of a histogram series and makes them cumulative in bound
// order, adding the rounded sums one after the other as Python does.
func buckets(a, b *seriesState, tmp *xsum) []Bucket {
	n := 0
	if a != nil {
		n += len(a.buckets)
	}
	if b != nil {
		n += len(b.buckets)
	}
	if n == 0 {
		return nil
	}
	out := make([]Bucket, 0, n)
	if a != nil {
		for i := range a.buckets {
			var other *xsum
			if b != nil {
				for j := range b.buckets {
					if b.buckets[j].le == a.buckets[i].le {
						other = &b.buckets[j].n
					}
				}
			}
			v, _ := total(&a.buckets[i].n, other, tmp)
			out = append(out, Bucket{a.buckets[i].le, v})
		}
	}
	if b != nil {
	next:
		for j := range b.buckets {
			if a != nil {
				for i := range a.buckets {
					if a.buckets[i].le == b.buckets[j].le {
						continue next
					}
				}
			}
			out = append(out, Bucket{b.buckets[j].le, b.buckets[j].n.value()})
		}
	}
	slices.SortFunc(out, func(x, y Bucket) int { return cmp.Compare(x.UpperBound, y.UpperBound) })
	acc := 0.0
	for i := range out {
		acc += out[i].Count
		out[i].Count = acc
	}
	return out
}

func withPid(ls []Label, pid string) []Label {
	out := make([]Label, 0, len(ls)+1)
	i := 0
	for ; i < len(ls) && ls[i].Name < "pid"; i++ {
		out = append(out, ls[i])
	}
	out = append(out, Label{"pid", pid})
	return append(out, ls[i:]...)
}
