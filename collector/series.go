package collector

import (
	"cmp"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// The answer's families in the order client_golang's registry would give them: families by
// name, and the series of a family by their label values, taken in the order of the sorted
// label names (series with fewer labels first). Our own families are kept compact (famOut)
// until they are written; the exporter's registry and the applications' families are
// client_model structs.

// len is the number of series of fo.
func (fo *famOut) len() int {
	switch fo.f.Type {
	case dto.MetricType_HISTOGRAM:
		return len(fo.hists)
	case dto.MetricType_SUMMARY:
		return len(fo.sums)
	}
	return len(fo.values)
}

// label is the value of the label at position pos (in the sorted order of the names) of
// series i.
func (fo *famOut) label(i, pos int) string {
	switch s := fo.lay.slots[pos]; {
	case s >= 0:
		return fo.labels[i*len(fo.f.Labels)+s]
	case s == -1:
		return fo.w.srcValue
	default:
		return fo.w.consts.values[-2-s]
	}
}

// compareWithin orders two series of fo. Their source and constant labels are the same, so
// only the variable labels are compared.
func (fo *famOut) compareWithin(i, j int) int {
	k := len(fo.f.Labels)
	for _, s := range fo.lay.slots {
		if s >= 0 {
			if c := strings.Compare(fo.labels[i*k+s], fo.labels[j*k+s]); c != 0 {
				return c
			}
		}
	}
	return 0
}

// sort sets fo.order when its series were not written in the answer's order. The translations
// write in that order where it is cheap, so this is usually one comparison per series.
func (fo *famOut) sort() {
	n := fo.len()
	sorted := true
	for i := 1; i < n && sorted; i++ {
		sorted = fo.compareWithin(i-1, i) <= 0
	}
	if sorted {
		fo.order = nil
		return
	}
	fo.orderBuf = fo.orderBuf[:0]
	for i := range n {
		fo.orderBuf = append(fo.orderBuf, int32(i))
	}
	fo.order = fo.orderBuf
	slices.SortStableFunc(fo.order, func(a, b int32) int { return fo.compareWithin(int(a), int(b)) })
}

// at is the index of the i-th series of fo in the answer's order.
func (fo *famOut) at(i int) int {
	if fo.order == nil {
		return i
	}
	return int(fo.order[i])
}

// seriesRef is one series of a family written by several sources.
type seriesRef struct {
	fo *famOut
	i  int32 // index in fo (as written)
}

// compareRefs orders series of different sources as the registry does.
func compareRefs(a, b seriesRef) int {
	la, lb := len(a.fo.lay.slots), len(b.fo.lay.slots)
	if la != lb {
		return cmp.Compare(la, lb)
	}
	for pos := range la {
		if c := strings.Compare(a.fo.label(int(a.i), pos), b.fo.label(int(b.i), pos)); c != 0 {
			return c
		}
	}
	return 0
}

// ourFamily is one of our families in the answer: the series every source wrote for it.
type ourFamily struct {
	f     *Family
	parts []*famOut
	refs  []seriesRef // the answer's order when several parts; nil: the single part's
}

// init makes of the family of parts (in source order) of one family name, sorted into the
// answer's order.
func (of *ourFamily) init(parts []*famOut) {
	*of = ourFamily{f: parts[0].f, parts: parts}
	for _, p := range parts {
		p.sort()
	}
	if len(parts) == 1 {
		return
	}
	n := 0
	for _, p := range parts {
		n += p.len()
	}
	of.refs = make([]seriesRef, 0, n)
	for _, p := range parts {
		for i := range p.len() {
			of.refs = append(of.refs, seriesRef{p, int32(p.at(i))})
		}
	}
	if !slices.IsSortedFunc(of.refs, compareRefs) {
		slices.SortStableFunc(of.refs, compareRefs)
	}
}

// len is the number of series of the family.
func (of *ourFamily) len() int {
	if of.refs != nil {
		return len(of.refs)
	}
	return of.parts[0].len()
}

// series calls fn for every series in the answer's order.
func (of *ourFamily) series(fn func(fo *famOut, i int)) {
	if of.refs == nil {
		fo := of.parts[0]
		for i := range fo.len() {
			fn(fo, fo.at(i))
		}
		return
	}
	for _, r := range of.refs {
		fn(r.fo, int(r.i))
	}
}

// answerFamily is one family of the answer: ours, an application's, or a client_model one (the
// exporter's registry).
type answerFamily struct {
	ours *ourFamily
	app  *appFamily
	mf   *dto.MetricFamily
	self *selfFamily // one of the exporter's own, shared by the answers within its max age
}

func (a answerFamily) name() string {
	switch {
	case a.ours != nil:
		return a.ours.f.Name
	case a.app != nil:
		return a.app.name
	case a.self != nil:
		return a.self.mf.GetName()
	}
	return a.mf.GetName()
}

// selfEncoded is a family of the exporter's own encoded in format f (nil for other families).
func (a answerFamily) selfEncoded(f expfmt.Format) ([]byte, error) {
	if a.self == nil {
		return nil, nil
	}
	return a.self.encoded(f)
}
