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

// mergeCache remembers, per key and scrape, where the key's entries go.
type mergeCache struct {
	epoch  uint64
	typ    string
	fam    *famState
	series *seriesState
	role   uint8
	reason string
}

type famState struct {
	name, help, typ, mode string
	series                map[string]*seriesState
	list                  []*seriesState
	gauges                []gaugeSample
}

type seriesState struct {
	labels           []Label
	value            float64
	count, sum       float64
	hasCount, hasSum bool
	buckets          []Bucket // per-bound sums, in order first met
}

type gaugeSample struct {
	s     *seriesState
	pid   string
	v, ts float64
}

// merger merges entries fed in sorted file order.
type merger struct {
	epoch   uint64
	fams    map[string]*famState
	order   []*famState
	dropped map[string]int
	// sizes: gauge samples per family at the previous merge, to size the slices at once.
	sizes map[string]int
}

func newMerger(epoch uint64, sizes map[string]int) *merger {
	return &merger{epoch: epoch, fams: map[string]*famState{}, dropped: map[string]int{}, sizes: sizes}
}

// gaugeSizes returns how many gauge samples each family had, for the next merge.
func (m *merger) gaugeSizes() map[string]int {
	out := map[string]int{}
	for _, f := range m.order {
		if len(f.gauges) > 0 {
			out[f.name] = len(f.gauges)
		}
	}
	return out
}

// add merges one entry of a file.
func (m *merger) add(k *Key, f *FileName, v, ts float64) {
	c := &k.merge
	if c.epoch != m.epoch || c.typ != f.Type {
		m.resolve(k, f.Type)
	}
	s := c.series
	switch c.role {
	case roleValue:
		s.value += v
	case roleCount:
		s.count += v
		s.hasCount = true
	case roleSum:
		s.sum += v
		s.hasSum = true
	case roleBucket:
		for i := range s.buckets {
			if s.buckets[i].UpperBound == k.le {
				s.buckets[i].Count += v
				return
			}
		}
		s.buckets = append(s.buckets, Bucket{k.le, v})
	case roleGauge:
		c.fam.mode = f.Mode
		c.fam.gauges = append(c.fam.gauges, gaugeSample{s, f.PIDLabel, v, ts})
	default:
		m.dropped[c.reason]++
	}
}

func (m *merger) resolve(k *Key, typ string) {
	c := &k.merge
	*c = mergeCache{epoch: m.epoch, typ: typ}
	fam := m.fams[k.Metric]
	if fam == nil {
		fam = &famState{name: k.Metric, help: k.Help, typ: typ, series: map[string]*seriesState{}}
		if n := m.sizes[k.Metric]; n > 0 && typ == TypeGauge {
			fam.gauges = make([]gaugeSample, 0, n)
		}
		m.fams[k.Metric] = fam
		m.order = append(m.order, fam)
	}
	c.fam = fam
	if fam.typ != typ {
		c.reason = EntryReasonTypeClash
		return
	}
	id, labels := k.labelsID, k.Labels
	switch typ {
	case TypeCounter:
		if k.Sample == k.Metric+"_total" {
			c.role = roleValue
		}
	case TypeSummary:
		switch k.Sample {
		case k.Metric + "_count":
			c.role = roleCount
		case k.Metric + "_sum":
			c.role = roleSum
		}
	case TypeHistogram:
		switch {
		case k.hasLe && !k.leErr:
			c.role = roleBucket
			id, labels = k.noLeID, k.noLe
		case !k.hasLe && k.Sample == k.Metric+"_sum":
			c.role = roleSum
		}
	case TypeGauge:
		if k.Sample == k.Metric {
			c.role = roleGauge
			id, labels = k.noPidID, k.noPid
		}
	}
	if c.role == roleDrop {
		c.reason = EntryReasonBadSample
		return
	}
	s := fam.series[id]
	if s == nil {
		s = &seriesState{labels: labels}
		fam.series[id] = s
		fam.list = append(fam.list, s)
	}
	c.series = s
}

// families finishes the merge: gauges by mode, histograms made cumulative.
func (m *merger) families() []Family {
	out := make([]Family, 0, len(m.order))
	for _, fam := range m.order {
		f := Family{Name: fam.name, Help: fam.help, Type: fam.typ, Mode: fam.mode}
		switch fam.typ {
		case TypeGauge:
			f.Series = mergeGauges(fam)
		case TypeHistogram:
			f.Series = make([]Series, 0, len(fam.list))
			for _, s := range fam.list {
				slices.SortFunc(s.buckets, func(a, b Bucket) int { return cmp.Compare(a.UpperBound, b.UpperBound) })
				acc := 0.0
				for i := range s.buckets {
					acc += s.buckets[i].Count
					s.buckets[i].Count = acc
				}
				f.Series = append(f.Series, Series{Labels: s.labels, Sum: s.sum, HasSum: s.hasSum,
					Count: acc, HasCount: len(s.buckets) > 0, Buckets: s.buckets})
			}
		default:
			f.Series = make([]Series, 0, len(fam.list))
			for _, s := range fam.list {
				f.Series = append(f.Series, Series{Labels: s.labels, Value: s.value,
					Count: s.count, HasCount: s.hasCount, Sum: s.sum, HasSum: s.hasSum})
			}
		}
		out = append(out, f)
	}
	return out
}

type pidKey struct {
	s   *seriesState
	pid string
}

// mergeGauges applies the family's mode to its samples, in the order they were read.
func mergeGauges(fam *famState) []Series {
	switch fam.mode {
	case "min", "livemin", "max", "livemax", "sum", "livesum", "mostrecent", "livemostrecent":
	default: // all, liveall, and what the client treats as all
		idx := make(map[pidKey]int, len(fam.gauges))
		out := make([]Series, 0, len(fam.gauges))
		for _, g := range fam.gauges {
			k := pidKey{g.s, g.pid}
			if i, ok := idx[k]; ok {
				out[i].Value = g.v
				continue
			}
			idx[k] = len(out)
			out = append(out, Series{Labels: withPid(g.s.labels, g.pid), Value: g.v})
		}
		return out
	}
	type acc struct {
		v, ts float64
		set   bool
	}
	accs := make(map[*seriesState]*acc, len(fam.list))
	for _, g := range fam.gauges {
		a := accs[g.s]
		if a == nil {
			a = &acc{}
			accs[g.s] = a
		}
		switch fam.mode {
		case "min", "livemin":
			if !a.set || g.v < a.v {
				a.v, a.set = g.v, true
			}
		case "max", "livemax":
			if !a.set || g.v > a.v {
				a.v, a.set = g.v, true
			}
		case "sum", "livesum":
			a.v += g.v
			a.set = true
		default: // mostrecent: the largest timestamp wins; never-set gauges (timestamp 0) vanish
			if a.ts < g.ts {
				a.v, a.ts, a.set = g.v, g.ts, true
			}
		}
	}
	out := make([]Series, 0, len(fam.list))
	for _, s := range fam.list {
		if a := accs[s]; a != nil && a.set {
			out = append(out, Series{Labels: s.labels, Value: a.v})
		}
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
