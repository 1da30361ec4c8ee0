package collector

import (
	"context"
	"fmt"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
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

type appEmit func(ch chan<- prometheus.Metric, names *nameClaims)

// nameClaims are the metric names taken so far in one request: the exporter's own (with the
// _sum, _count and _bucket series of its summaries and histograms) and the application
// families of the directories built before.
type nameClaims struct {
	own  map[string]bool
	apps map[string]appClaim
}

type appClaim struct {
	typ, help string
	labelled  bool // the series carry the multiproc_dir label, so directories stay apart
}

func newNameClaims(own []*dto.MetricFamily) *nameClaims {
	c := &nameClaims{own: make(map[string]bool, len(own)*2), apps: map[string]appClaim{}}
	for _, mf := range own {
		n := mf.GetName()
		c.own[n] = true
		switch mf.GetType() {
		case dto.MetricType_SUMMARY:
			c.own[n+"_sum"], c.own[n+"_count"] = true, true
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			c.own[n+"_sum"], c.own[n+"_count"], c.own[n+"_bucket"] = true, true, true
		}
	}
	return c
}

// claim says whether an application family may be served, and takes its name if so. A nil
// receiver knows only the exporter's fixed names.
func (c *nameClaims) claim(name, typ, help string, labelled bool) bool {
	if mpReservedNames[name] {
		return false
	}
	if c == nil {
		return true
	}
	names := []string{name}
	if typ == "summary" || typ == "histogram" {
		names = append(names, name+"_sum", name+"_count", name+"_bucket")
	}
	for _, n := range names {
		if c.own[n] {
			return false
		}
	}
	if prev, ok := c.apps[name]; ok {
		// Two directories may serve one family only when both label their series with their
		// directory and agree on what the family is.
		return prev.labelled && labelled && prev.typ == typ && prev.help == help
	}
	c.apps[name] = appClaim{typ: typ, help: help, labelled: labelled}
	return true
}

// lateApp is an appSource's part of one request: its metrics, once scraped, are built after
// the other sources'.
type lateApp struct {
	src  Source
	emit appEmit // set by the scrape when it succeeded
}

// requestGatherer gathers one request: every source's metrics and the exporter's own, then
// the application sources' in configuration order.
type requestGatherer struct {
	first prometheus.Gatherer
	late  []*lateApp
}

func (g *requestGatherer) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := g.first.Gather()
	if len(g.late) == 0 {
		return mfs, err
	}
	var errs prometheus.MultiError
	errs.Append(err)
	claims := newNameClaims(mfs)
	byName := make(map[string]*dto.MetricFamily, len(mfs))
	for _, mf := range mfs {
		byName[mf.GetName()] = mf
	}
	for _, l := range g.late {
		if l.emit == nil {
			continue // the scrape failed: its up is 0 already
		}
		emit := l.emit
		var emitErr error
		reg := prometheus.NewRegistry()
		prometheus.WrapRegistererWith(l.src.Config().Labels, reg).MustRegister(collectFunc(func(ch chan<- prometheus.Metric) {
			emitErr = safeEmit(func(ch chan<- prometheus.Metric) { emit(ch, claims) }, ch)
		}))
		amfs, err := reg.Gather()
		errs.Append(err)
		if emitErr != nil {
			errs.Append(fmt.Errorf("%s %s: %w", l.src.Kind().Name, l.src.Config().SourceName(), emitErr))
		}
		for _, mf := range amfs {
			prev, ok := byName[mf.GetName()]
			if !ok {
				byName[mf.GetName()] = mf
				mfs = append(mfs, mf)
				continue
			}
			if prev.GetType() != mf.GetType() || prev.GetHelp() != mf.GetHelp() {
				// The claims keep application families apart; this is a health family that
				// somehow disagrees. Keep the first.
				errs.Append(fmt.Errorf("metric family %s of %s %s differs from the one already gathered", mf.GetName(), l.src.Kind().Name, l.src.Config().SourceName()))
				continue
			}
			prev.Metric = append(prev.Metric, mf.Metric...)
		}
	}
	sort.Slice(mfs, func(i, j int) bool { return mfs[i].GetName() < mfs[j].GetName() })
	return mfs, errs.MaybeUnwrap()
}

// collectFunc is an unchecked collector made of its Collect.
type collectFunc func(ch chan<- prometheus.Metric)

func (f collectFunc) Describe(chan<- *prometheus.Desc)    {}
func (f collectFunc) Collect(ch chan<- prometheus.Metric) { f(ch) }
