package collector

import (
	"context"
	"strings"

	dto "github.com/prometheus/client_model/go"
)

// An application's metric families (a multiprocess directory's) are named by the application,
// so one of them may carry a name the exporter itself serves (gunicorn_workers, uwsgi_up,
// go_goroutines) or one that an earlier directory already serves. In one registry the two
// would collide and client_golang would keep whichever came first, at random. Instead the
// application's metrics are built after every other source's, against the names already
// taken: a family that collides is dropped, counted and logged, and the exporter's own series
// and the earlier directory's always win.

// appSource is a Source whose series are an application's.
type appSource interface {
	Source
	// scrapeApp reads the source under ctx; the returned function builds its metrics, leaving
	// out the families that names refuses.
	scrapeApp(ctx context.Context) (appEmit, error)
}

// appEmit writes an application source's series to w, leaving out the families that names
// refuses. It runs on the request's goroutine once every other source is done.
type appEmit func(w *Writer, names *nameClaims)

// nameClaims are the metric names taken so far in one request: every name the exporter has
// served since it started (see Exporter.servedNames), and the application families of the
// directories built before. A family takes more than its own name: a histogram its _bucket,
// _sum and _count series, a summary its _sum and _count, and a counter x_total also the
// OpenMetrics family name x.
type nameClaims struct {
	taken map[string]bool     // every name a family served so far occupies
	apps  map[string]appClaim // application families by name
}

type appClaim struct {
	typ, help string
	labelled  bool // the series carry the multiproc_dir label, so directories stay apart
}

// newNameClaims starts from served, which it takes over.
func newNameClaims(served map[string]bool) *nameClaims {
	return &nameClaims{taken: served, apps: map[string]appClaim{}}
}

// occupied lists the names a family of type typ ("counter", "gauge", "summary",
// "histogram", "untyped") exposed as name occupies.
func occupied(name, typ string) []string {
	switch typ {
	case "histogram":
		return []string{name, name + "_bucket", name + "_sum", name + "_count"}
	case "summary":
		return []string{name, name + "_sum", name + "_count"}
	case "counter":
		if base, ok := strings.CutSuffix(name, "_total"); ok {
			return []string{name, base}
		}
	}
	return []string{name}
}

// dtoType names a gathered family's type as occupied wants it.
func dtoType(t dto.MetricType) string {
	switch t {
	case dto.MetricType_COUNTER:
		return "counter"
	case dto.MetricType_GAUGE:
		return "gauge"
	case dto.MetricType_SUMMARY:
		return "summary"
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		return "histogram"
	}
	return "untyped"
}

// claim says whether an application family may be served, and takes its names if so. A nil
// receiver knows only the exporter's fixed names.
func (c *nameClaims) claim(name, typ, help string, labelled bool) bool {
	names := occupied(name, typ)
	for _, n := range names {
		if mpReservedNames[n] {
			return false
		}
	}
	if c == nil {
		return true
	}
	if prev, ok := c.apps[name]; ok {
		// Two directories may serve one family only when both label their series with their
		// directory and agree on what the family is.
		return prev.labelled && labelled && prev.typ == typ && prev.help == help
	}
	for _, n := range names {
		if c.taken[n] {
			return false
		}
	}
	for _, n := range names {
		c.taken[n] = true
	}
	c.apps[name] = appClaim{typ: typ, help: help, labelled: labelled}
	return true
}

// servedNames adds the names the exporter's own families and the other sources' families
// occupy to the names the exporter has served since it started, and returns a copy of them. A
// name stays reserved once served, so that an application family does not come and go with a
// source that is down at times.
func (e *Exporter) servedNames(own []*dto.MetricFamily, outs []*sourceOut) map[string]bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.served == nil {
		e.served = map[string]bool{}
	}
	for _, mf := range own {
		for _, n := range occupied(mf.GetName(), dtoType(mf.GetType())) {
			e.served[n] = true
		}
	}
	for _, f := range []*Family{scrapeErrors, seriesDropped} { // written after the applications'
		for _, n := range occupied(f.Name, dtoType(f.Type)) {
			e.served[n] = true
		}
	}
	for _, o := range outs {
		for _, fo := range o.w.used {
			if fo.len() > 0 {
				for _, n := range occupied(fo.f.Name, dtoType(fo.f.Type)) {
					e.served[n] = true
				}
			}
		}
	}
	out := make(map[string]bool, len(e.served))
	for n := range e.served {
		out[n] = true
	}
	return out
}
