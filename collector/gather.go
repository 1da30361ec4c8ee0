package collector

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
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
// Deadlines count from the call of Gather. It gives client_model structs, as the protobuf
// answer does; the handler writes the text formats straight from the sources' series.
func (e *Exporter) Gatherer(ctx context.Context, timeout time.Duration) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		fams, _, err := e.gather(ctx, timeout) // never released: the structs point into the series
		out := make([]*dto.MetricFamily, len(fams))
		for i, f := range fams {
			out[i] = f.dto()
		}
		return out, err
	})
}

// gather scrapes every source once under ctx and returns the answer's families, sorted by
// name, the exporter's own included. An error does not mean the families are incomplete
// beyond what it says: one failing source is reported by its up, not by an error.
//
// release gives the Writers back for reuse; the families must not be used after it.
func (e *Exporter) gather(ctx context.Context, timeout time.Duration) (fams []answerFamily, release func(), err error) {
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
	var own []*dto.MetricFamily
	var errs prometheus.MultiError
	if reg := e.registry.Load(); reg != nil {
		var err error
		own, err = reg.Gather()
		errs.Append(err)
	}
	now := time.Now()
	self, selfErr := e.self.gather(now)
	errs.Append(selfErr)
	shared, sharedErr := e.shared.gather(now)
	errs.Append(sharedErr)
	self = mergeSelf(self, shared)
	selfDTO := make([]*dto.MetricFamily, len(self))
	for i, sf := range self {
		selfDTO[i] = sf.mf
	}
	if e.opts.Self != nil {
		// The process's own series, before the applications' so that they claim their names.
		proc := &sourceOut{w: newWriter(time.Time{}, nil, g.lim, Kind{}, "", noLabels)}
		e.opts.Self.write(proc.w, now, e.opts.SelfMetricsMaxAge)
		outs = append(outs, proc)
	}
	g.buildLate(mergeDTO(selfDTO, own), outs, &errs)
	// The counters are written last, so that every failure of this scrape is in this answer.
	counters := &sourceOut{w: newWriter(time.Time{}, nil, g.lim, Kind{}, "", noLabels)}
	e.writeCounters(counters.w)
	e.handlerM().write(counters.w)
	outs = append(outs, counters)
	release = func() {
		for _, o := range outs {
			o.w.release()
		}
	}
	selfFams := make([]answerFamily, len(self))
	for i, sf := range self {
		selfFams[i] = answerFamily{self: sf}
	}
	return mergeByName(selfFams, assemble(own, outs)), release, errs.MaybeUnwrap()
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
func safeLate(out *sourceOut, claims *nameClaims) error {
	_, err := recovered("building metrics", func() (struct{}, error) {
		out.late(out.w, claims)
		return struct{}{}, nil
	})
	return err
}

// assemble merges the exporter's own families (sorted by name, from the registry), the
// sources' families and the applications' into one list sorted by name.
func assemble(own []*dto.MetricFamily, outs []*sourceOut) []answerFamily {
	var parts []*famOut
	var apps []*appFamily
	for _, o := range outs {
		for _, fo := range o.w.used {
			if fo.len() > 0 {
				parts = append(parts, fo)
			}
		}
		apps = append(apps, o.w.app...)
	}
	// A stable sort keeps the sources' order within a family.
	slices.SortStableFunc(parts, func(a, b *famOut) int { return strings.Compare(a.f.Name, b.f.Name) })
	ours := make([]answerFamily, 0, len(parts))
	ofs := make([]ourFamily, len(parts)) // one allocation for all: at most one family per part
	for i := 0; i < len(parts); {
		j := i + 1
		for j < len(parts) && parts[j].f.Name == parts[i].f.Name { // a family and its withLabels variants
			j++
		}
		of := &ofs[len(ours)]
		of.init(parts[i:j:j])
		ours = append(ours, answerFamily{ours: of})
		i = j
	}
	if len(apps) > 1 {
		apps = mergeApps(apps)
	}
	appFams := make([]answerFamily, len(apps))
	for i, af := range apps {
		appFams[i] = answerFamily{app: af}
	}
	return mergeByName(mergeByName(dtoFamilies(own), ours), appFams)
}

func dtoFamilies(mfs []*dto.MetricFamily) []answerFamily {
	out := make([]answerFamily, len(mfs))
	for i, mf := range mfs {
		out[i] = answerFamily{mf: mf}
	}
	return out
}

// mergeByName merges two lists of families sorted by name. A name in both (which the name
// claims prevent) keeps a's family.
func mergeByName(a, b []answerFamily) []answerFamily { return mergeSorted(a, b, answerFamily.name) }

// mergeSorted merges two lists sorted by name; a name in both keeps a's element only.
func mergeSorted[T any](a, b []T, name func(T) string) []T {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 {
		return b
	}
	out := make([]T, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		switch c := strings.Compare(name(a[0]), name(b[0])); {
		case c < 0:
			out, a = append(out, a[0]), a[1:]
		case c > 0:
			out, b = append(out, b[0]), b[1:]
		default:
			out, a, b = append(out, a[0]), a[1:], b[1:]
		}
	}
	return append(append(out, a...), b...)
}

// selfMetrics caches the families of the exporter's own collectors (RegisterSelf, or
// RegisterShared: untilRefresh).
type selfMetrics struct {
	reg          *prometheus.Registry
	maxAge       time.Duration
	untilRefresh bool // gathered again only after a refresh (fams nil), whatever maxAge

	mu   sync.Mutex
	at   time.Time
	fams []*selfFamily
	err  error
}

// selfFamily is one family of the exporter's own, with its encodings by format, made once
// for all the answers that share it.
type selfFamily struct {
	mf  *dto.MetricFamily
	mu  sync.Mutex
	enc map[expfmt.Format][]byte
}

// gather returns the families, gathering them again when they are older than maxAge. The
// families are shared by the answers that use them: nothing may change them.
func (s *selfMetrics) gather(now time.Time) ([]*selfFamily, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reg == nil {
		return nil, nil
	}
	if s.fams == nil || (!s.untilRefresh && expired(s.at, now, s.maxAge)) {
		mfs, err := s.reg.Gather()
		s.fams, s.err, s.at = make([]*selfFamily, len(mfs)), err, now
		for i, mf := range mfs {
			s.fams[i] = &selfFamily{mf: mf}
		}
	}
	return s.fams, s.err
}

// expired says whether a reading taken at was taken maxAge or longer before now (always with
// maxAge 0, and when the clock went back).
func expired(at, now time.Time, maxAge time.Duration) bool {
	return maxAge <= 0 || now.Sub(at) >= maxAge || now.Before(at)
}

// mergeSelf merges two lists of the exporter's own families sorted by name.
func mergeSelf(a, b []*selfFamily) []*selfFamily {
	return mergeSorted(a, b, func(sf *selfFamily) string { return sf.mf.GetName() })
}

// encoded is the family in format f, encoded by expfmt once.
func (sf *selfFamily) encoded(f expfmt.Format) ([]byte, error) {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	if b, ok := sf.enc[f]; ok {
		return b, nil
	}
	var buf bytes.Buffer
	if err := expfmt.NewEncoder(&buf, f).Encode(sf.mf); err != nil {
		return nil, err
	}
	if sf.enc == nil {
		sf.enc = map[expfmt.Format][]byte{}
	}
	sf.enc[f] = buf.Bytes()
	return buf.Bytes(), nil
}

// noLabels are the constant labels of a Writer of the core's own series.
var noLabels = newSourceLabels(nil)

// mergeDTO merges two lists of client_model families sorted by name.
func mergeDTO(a, b []*dto.MetricFamily) []*dto.MetricFamily {
	return mergeSorted(a, b, (*dto.MetricFamily).GetName)
}
