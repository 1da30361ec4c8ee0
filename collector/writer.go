package collector

import (
	"fmt"
	"time"
	"unicode/utf8"

	dto "github.com/prometheus/client_model/go"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
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
// labels included) takes while an answer is built and sent: its protobuf structs (dto.Metric
// 112 bytes, the value 64 + 8, each variable label's dto.LabelPair and string header 72, the
// label slice 8 per label) and its slot in its family's list, counted twice for the list's
// growth, with room to spare; a histogram or summary counts as several series and takes less
// per series. Label values are not copied: they are the source's own strings (bounded by its
// read) or short numbers. docs/limits.md states the bound per scrape; TestScrapeMemoryBound
// checks it.
func seriesBytes(labels int) uint64 { return 320 + 80*uint64(labels) }

// fixedScrapeBytes bounds what one scrape allocates besides its sources' reads and series:
// the chunks' unused tails, the families' lists, the answer's buffers.
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

	srcPair    *dto.LabelPair // the kind's source label and this source's name
	consts     *sourceLabels
	constPairs []*dto.LabelPair

	fams []*famOut // by Family.id
	used []*famOut // in order of first use
	app  []*dto.MetricFamily

	a arena
}

// famOut is a family's series written by one source.
type famOut struct {
	f       *Family
	lay     *layout
	metrics []*dto.Metric
}

// writerLimits are the caps a Writer keeps.
type writerLimits struct {
	maxSeries, maxLabel int
}

func newWriter(deadline time.Time, done <-chan struct{}, lim writerLimits, kind Kind, source string, consts *sourceLabels) *Writer {
	w := &Writer{deadline: deadline, done: done, maxSeries: lim.maxSeries, maxLabel: lim.maxLabel, consts: consts}
	if kind.SourceLabel != "" {
		w.srcPair = &dto.LabelPair{Name: &kind.SourceLabel, Value: &source}
	}
	for i := range consts.names {
		w.constPairs = append(w.constPairs, &dto.LabelPair{Name: &consts.names[i], Value: &consts.values[i]})
	}
	return w
}

// Value writes one series of a gauge, counter or untyped family.
func (w *Writer) Value(f *Family, v float64, labelValues ...string) {
	if !w.admit(f, 1, labelValues) {
		return
	}
	w.a.value(w.series(f, labelValues), f.Type, v)
}

// Histogram writes one series of a histogram family: count and sum, and the cumulative count
// of each bucket by ascending upper bound (the +Inf bucket is implicit: count).
func (w *Writer) Histogram(f *Family, count uint64, sum float64, bounds []float64, counts []uint64, labelValues ...string) {
	if f.Type != dto.MetricType_HISTOGRAM || len(bounds) != len(counts) {
		panic(fmt.Sprintf("%s: not a histogram, or %d bounds for %d counts", f.Name, len(bounds), len(counts)))
	}
	if !w.admit(f, len(bounds)+3, labelValues) {
		return
	}
	m := w.series(f, labelValues)
	h := w.a.hists.get()
	h.SampleCount = w.a.uint(count)
	h.SampleSum = w.a.float(sum)
	h.Bucket = w.a.bucketPtr.get(len(bounds))
	for i := range bounds {
		b := w.a.buckets.get()
		b.UpperBound = w.a.float(bounds[i])
		b.CumulativeCount = w.a.uint(counts[i])
		h.Bucket[i] = b
	}
	m.Histogram = h
}

// core writes a series of the core's own (up, scrape duration): no cap, no deadline.
func (w *Writer) core(f *Family, v float64, labelValues ...string) {
	w.a.value(w.series(f, labelValues), f.Type, v)
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

// series appends a series of f to the writer's output and returns it, its labels set.
func (w *Writer) series(f *Family, labelValues []string) *dto.Metric {
	fo := w.family(f)
	lay := fo.lay
	pairs := w.a.pairPtrs.get(len(lay.slots))
	for i, s := range lay.slots {
		switch {
		case s >= 0:
			lp := w.a.pairs.get()
			lp.Name = lay.names[i]
			lp.Value = w.a.str(labelValues[s])
			pairs[i] = lp
		case s == -1:
			pairs[i] = w.srcPair
		default:
			pairs[i] = w.constPairs[-2-s]
		}
	}
	m := w.a.metrics.get()
	m.Label = pairs
	fo.metrics = append(fo.metrics, m)
	return m
}

// family returns the writer's output for f, creating it on first use.
func (w *Writer) family(f *Family) *famOut {
	if f.id >= len(w.fams) {
		w.fams = append(w.fams, make([]*famOut, familyCount()-len(w.fams))...)
	}
	fo := w.fams[f.id]
	if fo == nil {
		if f.sourceLabel != "" && w.srcPair == nil {
			panic(fmt.Sprintf("%s: written by a source of another kind", f.Name))
		}
		fo = &famOut{f: f, lay: layoutFor(f, w.consts)}
		w.fams[f.id] = fo
		w.used = append(w.used, fo)
	}
	return fo
}

// discard forgets every series written (a failed scrape keeps none), but not the drops.
func (w *Writer) discard() {
	for _, fo := range w.used {
		w.fams[fo.f.id] = nil
	}
	w.used = w.used[:0]
	w.app = nil
}

// Series returns how many series have been written so far.
func (w *Writer) Series() int { return w.n }
