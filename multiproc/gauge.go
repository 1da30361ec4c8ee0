package multiproc

import (
	"cmp"
	"slices"
	"strings"
)

// Gauges are merged by the mode of the last file holding the family. Python applies the mode
// to the samples in file order; min, max, mostrecent and all depend on that order (NaN, -0
// against +0, equal timestamps, one pid label in two files). The store folds files in any
// order, so it keeps, per series, the partial result of every mode with the position of the
// samples it kept, and a scrape's own samples are then applied to it by position.

// pick is Python's running min (or max) of a gauge over samples in merge order: the first
// sample stays when it is NaN (nothing compares below or above NaN); otherwise the least (or
// greatest) non-NaN value wins, the first of equal ones (-0 and +0).
type pick struct {
	first, best     float64
	firstAt, bestAt pos
	set, hasBest    bool
}

func (p *pick) add(v float64, at pos, max bool) {
	if !p.set || at.before(p.firstAt) {
		p.first, p.firstAt, p.set = v, at, true
	}
	if v != v {
		return
	}
	better := !p.hasBest
	if !better {
		if max {
			better = v > p.best
		} else {
			better = v < p.best
		}
		better = better || (v == p.best && at.before(p.bestAt))
	}
	if better {
		p.best, p.bestAt, p.hasBest = v, at, true
	}
}

func (p *pick) value() float64 {
	if p.first != p.first {
		return p.first
	}
	return p.best
}

// recent is the mostrecent merge: the sample with the largest timestamp wins, the first of
// equal ones; a gauge never set (timestamp 0) is not served.
type recent struct {
	v, ts float64
	at    pos
	set   bool
}

func (r *recent) add(v, ts float64, at pos) {
	if (!r.set && ts > 0) || (r.set && (ts > r.ts || (ts == r.ts && at.before(r.at)))) {
		r.v, r.ts, r.at, r.set = v, ts, at, true
	}
}

type pidValue struct {
	v  float64
	at pos
}

// gaugeParts is what the store keeps of a gauge series: every mode's partial result.
type gaugeParts struct {
	min, max pick
	sum      xsum
	recent   recent
	pids     map[string]pidValue // all: the last sample of each pid label
}

func (g *gaugeParts) add(v, ts float64, at pos, pid string) {
	g.min.add(v, at, false)
	g.max.add(v, at, true)
	g.sum.add(v)
	g.recent.add(v, ts, at)
	if g.pids == nil {
		g.pids = map[string]pidValue{}
	}
	if p, ok := g.pids[pid]; !ok || p.at.before(at) {
		g.pids[pid] = pidValue{v, at}
	}
}

func modeKind(mode string) string {
	switch mode {
	case "min", "livemin":
		return "min"
	case "max", "livemax":
		return "max"
	case "sum", "livesum":
		return "sum"
	case "mostrecent", "livemostrecent":
		return "mostrecent"
	}
	return "all" // all, liveall, and what the client treats as all
}

// gaugeAcc is one series' merge in a scrape.
type gaugeAcc struct {
	labels []Label
	min    pick
	sum    xsum
	recent recent
}

// gaugeSeries applies the family's mode to the store's partial results and the scrape's
// samples.
func (m *merger) gaugeSeries(live, fold *famState, mode string) []Series {
	kind := modeKind(mode)
	if kind == "all" {
		return m.gaugeAll(live, fold)
	}
	// Per live series, in the order first met, then the store's others.
	var accs []*gaugeAcc
	byLive := map[*seriesState]*gaugeAcc{}
	start := func(labels []Label, f *seriesState) *gaugeAcc {
		a := &gaugeAcc{labels: labels}
		if f != nil && f.g != nil {
			switch kind {
			case "min":
				a.min = f.g.min
			case "max":
				a.min = f.g.max
			case "sum":
				a.sum = f.g.sum.clone()
			case "mostrecent":
				a.recent = f.g.recent
			}
		}
		accs = append(accs, a)
		return a
	}
	if live != nil {
		for _, g := range live.gauges {
			a := byLive[g.s]
			if a == nil {
				var f *seriesState
				if fold != nil {
					if f = fold.series[g.s.id]; f != nil {
						f.mark = m.epoch
					}
				}
				a = start(g.s.labels, f)
				byLive[g.s] = a
			}
			switch kind {
			case "min":
				a.min.add(g.v, g.at, false)
			case "max":
				a.min.add(g.v, g.at, true)
			case "sum":
				a.sum.add(g.v)
			case "mostrecent":
				a.recent.add(g.v, g.ts, g.at)
			}
		}
	}
	if fold != nil {
		for _, f := range fold.list {
			if f.g != nil && (live == nil || f.mark != m.epoch) {
				start(f.labels, f)
			}
		}
	}
	out := make([]Series, 0, len(accs))
	for _, a := range accs {
		switch kind {
		case "min", "max":
			if a.min.set {
				out = append(out, Series{Labels: a.labels, Value: a.min.value()})
			}
		case "sum":
			if a.sum.n > 0 {
				out = append(out, Series{Labels: a.labels, Value: a.sum.value()})
			}
		case "mostrecent":
			if a.recent.set {
				out = append(out, Series{Labels: a.labels, Value: a.recent.v})
			}
		}
	}
	return out
}

type pidKey struct {
	id  string
	pid string
}

// allLayout is the series of an all-mode gauge family of a merge with nothing from the store:
// their labels (with the pid), sorted as the exporter sorts series, and the series of each
// gauge sample. It holds while the merge does (a plan's merge is served again and again).
type allLayout struct {
	labels [][]Label
	slot   []int32 // per gauge sample
}

// allSeries serves an all-mode gauge family that has no store part: one series per series and
// pid label, the last sample by position (the samples are in merge order, so the last one).
func (m *merger) allSeries(live *famState) []Series {
	l := live.all
	if l == nil {
		l = &allLayout{slot: make([]int32, len(live.gauges))}
		idx := make(map[pidKey]int32, len(live.gauges))
		var first []int32 // a sample of each series
		for j, g := range live.gauges {
			k := pidKey{g.s.id, g.pid}
			i, ok := idx[k]
			if !ok {
				i = int32(len(first))
				idx[k] = i
				first = append(first, int32(j))
			}
			l.slot[j] = i
		}
		order := make([]int32, len(first))
		for i := range order {
			order[i] = int32(i)
		}
		labels := make([][]Label, len(first))
		for i, j := range first {
			g := live.gauges[j]
			labels[i] = withPid(g.s.labels, g.pid)
		}
		slices.SortStableFunc(order, func(a, b int32) int { return compareLabelValues(labels[a], labels[b]) })
		rank := make([]int32, len(order))
		l.labels = make([][]Label, len(order))
		for r, i := range order {
			rank[i] = int32(r)
			l.labels[r] = labels[i]
		}
		for j := range l.slot {
			l.slot[j] = rank[l.slot[j]]
		}
		live.all = l
	}
	out := make([]Series, len(l.labels))
	for i := range out {
		out[i].Labels = l.labels[i]
	}
	for j := range live.gauges {
		out[l.slot[j]].Value = live.gauges[j].v
	}
	return out
}

// compareLabelValues orders label sets as the exporter sorts series: fewer labels first, then
// by the values in label name order.
func compareLabelValues(a, b []Label) int {
	if len(a) != len(b) {
		return cmp.Compare(len(a), len(b))
	}
	for i := range a {
		if c := strings.Compare(a[i].Value, b[i].Value); c != 0 {
			return c
		}
	}
	return 0
}

// gaugeAll serves one series per series and pid label: the last sample by position.
func (m *merger) gaugeAll(live, fold *famState) []Series {
	if fold == nil && live != nil {
		return m.allSeries(live)
	}
	type slot struct {
		labels []Label
		pid    string
		v      float64
		at     pos
	}
	idx := map[pidKey]int{}
	var slots []slot
	put := func(labels []Label, id, pid string, v float64, at pos) {
		k := pidKey{id, pid}
		if i, ok := idx[k]; ok {
			if slots[i].at.before(at) {
				slots[i].v, slots[i].at = v, at
			}
			return
		}
		idx[k] = len(slots)
		slots = append(slots, slot{labels, pid, v, at})
	}
	if live != nil {
		for _, g := range live.gauges {
			put(g.s.labels, g.s.id, g.pid, g.v, g.at)
		}
	}
	if fold != nil {
		for _, f := range fold.list {
			if f.g == nil {
				continue
			}
			for pid, p := range f.g.pids {
				put(f.labels, f.id, pid, p.v, p.at)
			}
		}
	}
	out := make([]Series, 0, len(slots))
	for _, s := range slots {
		out = append(out, Series{Labels: withPid(s.labels, s.pid), Value: s.v})
	}
	return out
}
