package collector

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// One request's answer is built here, without a per-request registry: every source writes its
// series through its own Writer (descriptors and label layouts are made once per family, not
// per series), the families come out sorted by construction, and the exporter's own metrics
// (one registry Gather: build info, Go, process, promhttp, the error counters) are merged in
// by name. Sources of one kind cannot collide: each series carries its source's name, and New
// refuses two sources of one kind with one name.

// gathering is one request's scrape of every source.
type gathering struct {
	e       *Exporter
	ctx     context.Context // the request's
	start   time.Time       // every deadline counts from here
	timeout time.Duration   // the request's, or 0: each source's own
	lim     writerLimits
}

// sourceOut is one source's part of a request.
type sourceOut struct {
	src      Source
	w        *Writer
	late     appEmit // an application source's series, built once the others are done
	deadline time.Time
	start    time.Time
	took     time.Duration
}

func (g *gathering) newWriter(s Source, consts *sourceLabels, deadline time.Time) *Writer {
	return newWriter(deadline, g.ctx.Done(), g.lim, s.Kind(), s.Config().SourceName(), consts)
}

// Gatherer returns a Gatherer that scrapes every source once under ctx. When timeout is
// positive it is the deadline of every source; otherwise each source's own Config.Timeout.
// Deadlines count from the call of Gather.
func (e *Exporter) Gatherer(ctx context.Context, timeout time.Duration) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return e.gather(ctx, timeout) })
}

// gather scrapes every source once under ctx and returns the answer's families, sorted by
// name, the exporter's own included. An error does not mean the families are incomplete
// beyond what it says: one failing source is reported by its up, not by an error.
func (e *Exporter) gather(ctx context.Context, timeout time.Duration) ([]*dto.MetricFamily, error) {
	g := &gathering{e: e, ctx: ctx, start: time.Now(), timeout: timeout, lim: e.writerLimits()}
	plan := e.plan(ctx, timeout, g.start)
	outs := make([]*sourceOut, len(plan))
	if len(plan) == 1 {
		outs[0] = g.scrapeOne(plan[0])
	} else {
		var wg sync.WaitGroup
		for i, p := range plan {
			wg.Go(func() { outs[i] = g.scrapeOne(p) })
		}
		wg.Wait()
	}
	// The registry is gathered after the sources, so that the errors they counted are in
	// this answer.
	own, err := e.registry.Gather()
	var errs prometheus.MultiError
	errs.Append(err)
	g.buildLate(own, outs, &errs)
	return assemble(own, outs), errs.MaybeUnwrap()
}

// buildLate builds the application sources' series, in configuration order, against the
// names already served (see appnames.go), and reports them.
func (g *gathering) buildLate(own []*dto.MetricFamily, outs []*sourceOut, errs *prometheus.MultiError) {
	var claims *nameClaims
	for _, out := range outs {
		if out.late == nil {
			continue
		}
		if claims == nil {
			claims = newNameClaims(g.e.servedNames(own, outs))
		}
		err := safeLate(out, claims)
		if err != nil {
			errs.Append(fmt.Errorf("%s %s: %w", out.src.Kind().Name, out.src.Config().SourceName(), err))
		} else {
			err = out.w.err
		}
		g.report(out, err)
	}
}

// safeLate runs an application source's late build, turning a panic into an error.
func safeLate(out *sourceOut, claims *nameClaims) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic while building metrics: %v", p)
		}
	}()
	out.late(out.w, claims)
	return nil
}

// assemble merges the exporter's own families (sorted by name, from the registry), the
// sources' families and the applications' into one list sorted by name.
func assemble(own []*dto.MetricFamily, outs []*sourceOut) []*dto.MetricFamily {
	var parts []*famOut
	var apps []*dto.MetricFamily
	for _, o := range outs {
		parts = append(parts, o.w.used...)
		apps = append(apps, o.w.app...)
	}
	// A stable sort keeps the sources' order within a family.
	slices.SortStableFunc(parts, func(a, b *famOut) int { return strings.Compare(a.f.Name, b.f.Name) })
	ours := make([]*dto.MetricFamily, 0, len(parts))
	for i := 0; i < len(parts); {
		j := i + 1
		for j < len(parts) && parts[j].f.Name == parts[i].f.Name { // a family and its withLabels variants
			j++
		}
		if ms := mergeRuns(parts[i:j]); len(ms) > 0 {
			f := parts[i].f
			ours = append(ours, &dto.MetricFamily{Name: &f.Name, Help: &f.Help, Type: &f.Type, Metric: ms})
		}
		i = j
	}
	if len(apps) > 1 {
		apps = mergeApps(apps)
	}
	return mergeByName(mergeByName(own, ours), apps)
}

// mergeRuns returns the series of one family written by several sources, sorted as
// client_golang's registry sorts them. Each source's run is usually sorted already (the
// translations write in that order), so the cost is one comparison per series.
func mergeRuns(runs []*famOut) []*dto.Metric {
	for _, r := range runs {
		if !slices.IsSortedFunc(r.metrics, compareMetrics) {
			slices.SortFunc(r.metrics, compareMetrics)
		}
	}
	if len(runs) == 1 {
		return runs[0].metrics
	}
	n := 0
	for _, r := range runs {
		n += len(r.metrics)
	}
	out := make([]*dto.Metric, 0, n)
	for _, r := range runs {
		out = append(out, r.metrics...)
	}
	if !slices.IsSortedFunc(out, compareMetrics) {
		slices.SortStableFunc(out, compareMetrics)
	}
	return out
}

// compareMetrics orders series as client_golang's registry does: by number of labels, then
// label values in the order of the (sorted) label names.
func compareMetrics(a, b *dto.Metric) int {
	if len(a.Label) != len(b.Label) {
		return cmp.Compare(len(a.Label), len(b.Label))
	}
	for i, l := range a.Label {
		if c := strings.Compare(l.GetValue(), b.Label[i].GetValue()); c != 0 {
			return c
		}
	}
	return 0
}

// mergeApps merges application families of one name (two directories labelled with their
// directory share a family) and sorts them by name.
func mergeApps(apps []*dto.MetricFamily) []*dto.MetricFamily {
	slices.SortStableFunc(apps, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	out := apps[:0]
	for _, mf := range apps {
		if n := len(out); n > 0 && out[n-1].GetName() == mf.GetName() {
			prev := out[n-1]
			prev.Metric = append(prev.Metric, mf.Metric...)
			slices.SortStableFunc(prev.Metric, compareMetrics)
			continue
		}
		out = append(out, mf)
	}
	return out
}

// mergeByName merges two lists of families sorted by name. A name in both (which the name
// claims prevent) keeps a's family.
func mergeByName(a, b []*dto.MetricFamily) []*dto.MetricFamily {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 {
		return b
	}
	out := make([]*dto.MetricFamily, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch c := strings.Compare(a[i].GetName(), b[j].GetName()); {
		case c < 0:
			out = append(out, a[i])
			i++
		case c > 0:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}
