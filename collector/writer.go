package collector

import (
	"fmt"
	"math"
	"sync"
	"time"
	"unicode/utf8"

	dto "github.com/prometheus/client_model/go"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
	"github.com/wsgi-exporter/wsgi_exporter/multiproc"
)

// Reasons a series is dropped by the core (wsgi_exporter_series_dropped_total).
const (
	DropSeriesLimit       = "series_limit"         // over Options.MaxSeriesPerSource
	DropLabelValueTooLong = "label_value_too_long" // a label value over Options.MaxLabelValueLength
	DropInvalidLabelValue = "invalid_label_value"  // a label value that is not valid UTF-8
)

// DropReasons lists every reason a series can be dropped, so counters start at 0 for each.
var DropReasons = []string{DropSeriesLimit, DropLabelValueTooLong, DropInvalidLabelValue}

// seriesBytes bounds the memory one series with labels labels (its source label and constant
// labels included) takes while an answer is built and written: its value (8 bytes) and a
// string header per label (16; variable labels only, in fact) in its family's lists, counted
// four times for the lists' growth by doubling, and its index in the family's order (8). A
// histogram's or summary's series take less each. Label values are not copied: they are the
// source's own strings (bounded by its read) or short numbers. An application's series (a
// multiprocess directory's, a Redis store's: appfamily.go) are kept as a reference to the
// merged series (part of the source's read) and a pointer per label, 4 × (16 + 8 × labels)
// bytes with the growth (docs/limits.md). An answer in protobuf, and the Gatherer, build one
// family's client_model structs at a time on top.
// docs/limits.md states the bound per scrape; TestScrapeMemoryBound checks it.
func seriesBytes(labels int) uint64 { return 4*(8+16*uint64(labels)) + 8 }

// fixedScrapeBytes bounds what one scrape allocates besides its sources' reads and series:
// the exporter's own metrics, the families' lists' unused capacity, the answer's buffers, and
// one family's client_model structs when they are needed.
const fixedScrapeBytes = 2 << 20

// checkEvery is how many series are written between two looks at the clock.
const checkEvery = 256

// Writer receives the series of one source for one request. A translation writes each series
// with Value or Histogram, giving the values of the family's labels in their order; the Writer
// adds the source's own labels, keeps the caps (series per source, length of a label value),
// and stops taking series once the deadline has passed. A Writer is used by one goroutine.
type Writer struct {
	deadline time.Time
	done     <-chan struct{} // the request's: closed when the scraper hangs up
	err      error           // why writing stopped early; nil while it goes on
	checks   int

	maxSeries, maxLabel int
	n                   int // series taken (a histogram counts its buckets, sum and count)
	dropped             [3]int

	kind     Kind
	srcValue string // the source label's value: the source's name
	consts   *sourceLabels
	// srcPair and constPairs are the same as client_model pairs, for conversions.
	srcPair    *dto.LabelPair
	constPairs []*dto.LabelPair

	fams []*famOut // by Family.id; kept, with their lists, when the Writer is reused
	used []*famOut // in order of first use in this generation
	gen  uint64    // bumped at every reuse: a famOut of another generation is unused

	// An application's families (appfamily.go), and their series and labels one after the
	// other (the lists kept, with their capacity, when the Writer is reused).
	app       []*appFamily
	appSeries []appSeries
	appLabels []*multiproc.Label
}

// famOut is a family's series written by one source, stored compactly: a value and the
// variable labels' values per series. The source and constant labels are the Writer's.
type famOut struct {
	f      *Family
	lay    *layout
	w      *Writer
	values []float64   // gauge, counter, untyped: one per series
	hists  []histValue // histogram: one per series
	counts []uint64    // the histograms' bucket counts, one after the other
	sums   []sumValue  // summary: one per series
	qvals  []float64   // the summaries' quantile values, one after the other
	labels []string    // len(f.Labels) values per series, in the family's order
	order  []int32     // the series in the answer's order; nil: as written
	tmpl   *labelTemplate

	gen      uint64  // the Writer's generation it belongs to
	orderBuf []int32 // order's storage, kept for reuse

	// What tmpl was made for: it is kept across generations while they are the same.
	tmplLay    *layout
	tmplSrc    string
	tmplConsts *sourceLabels
}

// histValue is one series of a histogram family.
type histValue struct {
	count  uint64
	sum    float64
	bounds []float64 // ascending upper bounds, shared (the family's buckets)
	off    int       // where its counts start in famOut.counts
}

// sumValue is one series of a summary family.
type sumValue struct {
	count     uint64
	sum       float64
	quantiles []float64 // ascending quantiles, shared
	off       int       // where its values start in famOut.qvals
}

// writerLimits are the caps a Writer keeps.
type writerLimits struct {
	maxSeries, maxLabel int
}

// newWriter returns a Writer for one source and request, reusing one released by an earlier
// answer when there is one (its lists keep their capacity).
func newWriter(deadline time.Time, done <-chan struct{}, lim writerLimits, kind Kind, source string, consts *sourceLabels) *Writer {
	w := writerPool.Get().(*Writer)
	w.gen++
	fams, gen := w.fams, w.gen
	*w = Writer{deadline: deadline, done: done, maxSeries: lim.maxSeries, maxLabel: lim.maxLabel, consts: consts,
		kind: kind, srcValue: source, fams: fams, used: w.used[:0], gen: gen,
		appSeries: w.appSeries[:0], appLabels: w.appLabels[:0]}
	if kind.SourceLabel != "" {
		w.srcPair = &dto.LabelPair{Name: &w.kind.SourceLabel, Value: &w.srcValue}
	}
	for i := range consts.names {
		w.constPairs = append(w.constPairs, &dto.LabelPair{Name: &consts.names[i], Value: &consts.values[i]})
	}
	return w
}

var writerPool = sync.Pool{New: func() any { return &Writer{} }}

// release gives w back for reuse once nothing refers to its series any more (the answer is
// written). The label values and the application's series are forgotten, so that they do not
// keep a document or a snapshot alive.
func (w *Writer) release() {
	for _, fo := range w.used {
		clear(fo.labels)
	}
	w.forgetApp()
	writerPool.Put(w)
}

// forgetApp drops the application's families, keeping the lists' capacity.
func (w *Writer) forgetApp() {
	clear(w.appSeries)
	clear(w.appLabels)
	w.app, w.appSeries, w.appLabels = nil, w.appSeries[:0], w.appLabels[:0]
}

// Value writes one series of a gauge, counter or untyped family.
func (w *Writer) Value(f *Family, v float64, labelValues ...string) {
	if f.Type == dto.MetricType_HISTOGRAM || f.Type == dto.MetricType_SUMMARY {
		panic(f.Name + ": Value on a histogram or summary")
	}
	if !w.admit(f, 1, labelValues) {
		return
	}
	fo := w.family(f)
	fo.values = append(fo.values, v)
	fo.labels = append(fo.labels, labelValues...)
}

// Histogram writes one series of a histogram family: count and sum, and the cumulative count
// of each bucket by ascending upper bound (the +Inf bucket is implicit: count). bounds must not
// change afterwards; counts is copied.
func (w *Writer) Histogram(f *Family, count uint64, sum float64, bounds []float64, counts []uint64, labelValues ...string) {
	if f.Type != dto.MetricType_HISTOGRAM || len(bounds) != len(counts) {
		panic(fmt.Sprintf("%s: not a histogram, or %d bounds for %d counts", f.Name, len(bounds), len(counts)))
	}
	samples := len(bounds) + 2
	if len(bounds) == 0 || !math.IsInf(bounds[len(bounds)-1], 1) {
		samples++ // the +Inf bucket
	}
	if !w.admit(f, samples, labelValues) {
		return
	}
	fo := w.family(f)
	fo.hists = append(fo.hists, histValue{count: count, sum: sum, bounds: bounds, off: len(fo.counts)})
	fo.counts = append(fo.counts, counts...)
	fo.labels = append(fo.labels, labelValues...)
}

// core writes a series of the core's own (up, scrape duration): no cap, no deadline.
func (w *Writer) core(f *Family, v float64, labelValues ...string) {
	fo := w.family(f)
	fo.values = append(fo.values, v)
	fo.labels = append(fo.labels, labelValues...)
}

// summary writes a series of a summary family of the core's own (no cap, no deadline): count,
// sum, and the value at each quantile (ascending; quantiles must not change afterwards,
// values is copied).
func (w *Writer) summary(f *Family, count uint64, sum float64, quantiles, values []float64, labelValues ...string) {
	if f.Type != dto.MetricType_SUMMARY || len(quantiles) != len(values) {
		panic(fmt.Sprintf("%s: not a summary, or %d quantiles for %d values", f.Name, len(quantiles), len(values)))
	}
	fo := w.family(f)
	fo.sums = append(fo.sums, sumValue{count: count, sum: sum, quantiles: quantiles, off: len(fo.qvals)})
	fo.qvals = append(fo.qvals, values...)
	fo.labels = append(fo.labels, labelValues...)
}

// admit says whether a series of f with these label values may be written, counting it
// against the caps, or counting why it is dropped.
func (w *Writer) admit(f *Family, samples int, labelValues []string) bool {
	if len(labelValues) != len(f.Labels) {
		panic(fmt.Sprintf("%s: %d label values for the labels %v", f.Name, len(labelValues), f.Labels))
	}
	return w.admitValues(samples, labelValues, true)
}

// admitValues is admit for series built outside Value and Histogram (an application's
// families): samples is the number of series it makes, values its label values (checked for
// valid UTF-8 only when checkUTF8).
func (w *Writer) admitValues(samples int, values []string, checkUTF8 bool) bool {
	if w.err != nil {
		return false
	}
	if w.n+samples > w.maxSeries {
		w.dropped[0]++
		return false
	}
	for _, v := range values {
		if len(v) > w.maxLabel {
			w.dropped[1]++
			return false
		}
		if checkUTF8 && !utf8.ValidString(v) {
			w.dropped[2]++
			return false
		}
	}
	w.n += samples
	if w.checks += samples; w.checks >= checkEvery {
		w.checks = 0
		return w.alive()
	}
	return true
}

// alive checks the deadline and the scraper: once either is gone, writing stops for good.
func (w *Writer) alive() bool {
	if w.err != nil {
		return false
	}
	select {
	case <-w.done:
		w.err = fetch.Errorf(fetch.ReasonTimeout, "the scraper went away while the metrics were built")
		return false
	default:
	}
	if !w.deadline.IsZero() && time.Now().After(w.deadline) {
		w.err = fetch.Errorf(fetch.ReasonTimeout, "deadline passed while building the metrics (%d series written)", w.n)
		return false
	}
	return true
}

// family returns the writer's output for f, creating it on first use.
func (w *Writer) family(f *Family) *famOut {
	if f.id >= len(w.fams) {
		w.fams = append(w.fams, make([]*famOut, familyCount()-len(w.fams))...)
	}
	fo := w.fams[f.id]
	if fo == nil || fo.gen != w.gen {
		if f.sourceLabel != "" && f.sourceLabel != w.kind.SourceLabel {
			panic(fmt.Sprintf("%s: written by a source of another kind", f.Name))
		}
		if fo == nil {
			fo = &famOut{f: f, w: w}
			w.fams[f.id] = fo
		}
		fo.reset(w.gen, layoutFor(f, w.consts))
		w.used = append(w.used, fo)
	}
	return fo
}

// discard forgets every series written (a failed scrape keeps none), but not the drops.
func (w *Writer) discard() {
	for _, fo := range w.used {
		clear(fo.labels)
		fo.gen = 0
	}
	w.used = w.used[:0]
	w.forgetApp()
}

// reset empties fo for generation gen of its Writer, keeping its lists' capacity.
func (fo *famOut) reset(gen uint64, lay *layout) {
	tmpl := fo.tmpl
	if tmpl != nil && (fo.tmplLay != lay || fo.tmplSrc != fo.w.srcValue || fo.tmplConsts != fo.w.consts) {
		tmpl = nil // made for another source
	}
	*fo = famOut{f: fo.f, w: fo.w, lay: lay, gen: gen,
		values: fo.values[:0], hists: fo.hists[:0], counts: fo.counts[:0], sums: fo.sums[:0], qvals: fo.qvals[:0],
		labels: fo.labels[:0], orderBuf: fo.orderBuf[:0],
		tmpl: tmpl, tmplLay: fo.tmplLay, tmplSrc: fo.tmplSrc, tmplConsts: fo.tmplConsts}
}

// Series returns how many series have been written so far.
func (w *Writer) Series() int { return w.n }
