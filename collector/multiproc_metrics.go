package collector

import (
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"

	"github.com/wsgi-exporter/wsgi_exporter/multiproc"
)

// A multiprocess directory's metrics: the directory's health families, and the translation of
// a merged directory (multiproc.Snapshot) into them and into the application's own families,
// whose names and labels come from the files. The health series carry multiproc_dir
// (MultiprocKind's source label); the application's carry it only with DirLabel.
var (
	mpFiles = gauge(MultiprocKind, "multiproc_files",
		"Multiprocess .db files in the directory, by metric type.", "type")
	mpFileBytes = gauge(MultiprocKind, "multiproc_file_size_bytes",
		"Size on disk of the directory's .db files, by metric type.", "type")
	mpUsedBytes = gauge(MultiprocKind, "multiproc_used_bytes",
		"Bytes in use (the header's used field) of the .db files, read by the last scrape or folded into the store, by metric type.", "type")
	mpDeadFiles = gauge(MultiprocKind, "multiproc_dead_process_files",
		"Files of the directory whose writer (the numeric id in the file name) no longer exists in /proc, by metric type.", "type")
	mpProcesses = gauge(MultiprocKind, "multiproc_processes",
		"Distinct writer ids in the directory's file names, by state: alive, dead (no /proc/<pid>), unknown (not a pid, or liveness checks off).", "state")
	mpEntries = gauge(MultiprocKind, "multiproc_entries",
		"Entries merged by the last scrape: read from the directory's files, or held by the store.")
	mpFamilies = gauge(MultiprocKind, "multiproc_families",
		"Application metric families merged from the directory in the last scrape.")
	mpDeadLive = gauge(MultiprocKind, "multiproc_dead_live_files_skipped",
		"live* gauge files of dead processes left out of the last merge (--multiproc.drop-dead-live-gauges).")
	mpFileErrors = counter(MultiprocKind, "multiproc_file_errors_total",
		"Files skipped by a scrape, by reason (each scrape that skips a file counts it once).", "reason")
	mpDropped = counter(MultiprocKind, "multiproc_entries_dropped_total",
		"Entries or series of the application left out of a scrape's output, by reason.", "reason")
)

// mpReservedNames are the names an application family may never take: the directory's own
// families, multiproc_up and the core's per-source families.
var mpReservedNames = func() map[string]bool {
	m := map[string]bool{"multiproc_up": true, scrapeDuration.Name: true,
		"wsgi_exporter_scrape_errors_total": true, "wsgi_exporter_series_dropped_total": true}
	for _, f := range []*Family{mpFiles, mpFileBytes, mpUsedBytes, mpDeadFiles, mpProcesses, mpEntries,
		mpFamilies, mpDeadLive, mpFileErrors, mpDropped} {
		m[f.Name] = true
	}
	return m
}()

var (
	mpFileReasons = sorted(
		multiproc.FileReasonShort, multiproc.FileReasonTruncated, multiproc.FileReasonCorrupt,
		multiproc.FileReasonBadName, multiproc.FileReasonIgnored, multiproc.FileReasonVanished,
		multiproc.FileReasonPermission, multiproc.FileReasonRead, multiproc.FileReasonSymlink,
		multiproc.FileReasonNotRegular,
	)
	mpDropReasons = sorted(
		multiproc.EntryReasonBadKey, multiproc.EntryReasonBadSample, multiproc.EntryReasonTypeClash,
		multiproc.EntryReasonKeyTooLong, mpReasonLabelConflict, mpReasonNameConflict, mpReasonInvalid,
	)
	mpTypes = sorted(multiproc.TypeCounter, multiproc.TypeGauge, multiproc.TypeHistogram, multiproc.TypeSummary)
)

func sorted(s ...string) []string { slices.Sort(s); return s }

// Reasons a merged series is not exported.
const (
	mpReasonLabelConflict = "label_conflict" // has a label the exporter adds itself (multiproc_dir, a constant label)
	mpReasonNameConflict  = "name_conflict"  // family named like one of the exporter's own metrics
	mpReasonInvalid       = "invalid"        // a name, label or value client_golang would refuse
)

// translate writes the application's series, then the directory's health.
func (m *Multiproc) translate(w *Writer, snap *multiproc.Snapshot, claims *nameClaims) {
	drops := writeAppFamilies(w, snap.Families, m.opts.DirLabel, claims, m.logConflict)

	m.mu.Lock()
	for r, n := range drops {
		m.dropped[r] += float64(n)
	}
	writeByReason(w, mpFileErrors, m.fileErrors, mpFileReasons)
	writeByReason(w, mpDropped, m.dropped, mpDropReasons)
	m.mu.Unlock()

	for _, t := range mpTypes {
		ts := snap.Types[t]
		w.Value(mpFiles, float64(ts.Files), t)
		w.Value(mpFileBytes, float64(ts.Size), t)
		w.Value(mpUsedBytes, float64(ts.Used), t)
		if m.opts.ProcRoot != "" {
			w.Value(mpDeadFiles, float64(ts.DeadFiles), t)
		}
	}
	p := snap.Processes
	w.Value(mpProcesses, float64(p.Alive), "alive") // sorted by name
	w.Value(mpProcesses, float64(p.Dead), "dead")
	w.Value(mpProcesses, float64(p.Unknown), "unknown")
	w.Value(mpEntries, float64(snap.Entries))
	w.Value(mpFamilies, float64(len(snap.Families)))
	if m.opts.DropDeadLiveGauges {
		w.Value(mpDeadLive, float64(snap.DroppedDeadLive))
	}
	m.translateStore(w, snap)
}

// mpLabel is a label of an application series being built.
type mpLabel struct {
	name, value *string
	pair        *dto.LabelPair // set: a pair shared by every series (multiproc_dir, a constant label)
}

// writeAppFamilies writes an application's merged series (a multiprocess directory's, or a
// Redis store's: multiproc_redis.go) and returns what it had to leave out, by reason. With
// srcLabel the series carry the kind's source label (w's source pair). A family whose name
// claims refuses is left out whole (reason name_conflict), and conflict is told; a series that client_golang's registry would refuse (a name that is not UTF-8, a label name
// that is invalid or repeated, a value that is not UTF-8, a summary with a quantile label)
// is left out with reason invalid; one with a label the exporter adds itself with reason
// label_conflict.
func writeAppFamilies(w *Writer, families []multiproc.Family, srcLabel bool, claims *nameClaims, conflict func(family string)) map[string]int {
	drops := map[string]int{}
	var labels []mpLabel
	var values []string
	for fi := range families {
		f := &families[fi]
		name := f.Name
		if f.Type == multiproc.TypeCounter {
			name += "_total"
		}
		if !claims.claim(name, f.Type, f.Help, srcLabel) {
			drops[mpReasonNameConflict] += len(f.Series)
			conflict(name)
			continue
		}
		if !model.UTF8Validation.IsValidMetricName(name) {
			drops[mpReasonInvalid] += len(f.Series)
			continue
		}
		typ := mpDTOType(f.Type)
		if typ < 0 {
			drops[mpReasonInvalid] += len(f.Series)
			continue
		}
		mf := &dto.MetricFamily{Name: w.a.str(name), Help: w.a.str(f.Help), Type: typ.Enum()}
	series:
		for si := range f.Series {
			s := &f.Series[si]
			labels, values = labels[:0], values[:0]
			for li := range s.Labels {
				l := &s.Labels[li]
				if (srcLabel && l.Name == *w.srcPair.Name) || slices.Contains(w.consts.names, l.Name) {
					drops[mpReasonLabelConflict]++
					continue series
				}
				if !validLabelName(l.Name) || !utf8.ValidString(l.Value) || (typ == dto.MetricType_SUMMARY && l.Name == model.QuantileLabel) {
					drops[mpReasonInvalid]++
					continue series
				}
				labels = append(labels, mpLabel{name: w.a.str(l.Name), value: w.a.str(l.Value)})
				values = append(values, l.Value)
			}
			if srcLabel {
				labels = append(labels, mpLabel{name: w.srcPair.Name, pair: w.srcPair})
			}
			for i, p := range w.constPairs {
				labels = append(labels, mpLabel{name: &w.consts.names[i], pair: p})
			}
			slices.SortFunc(labels, func(a, b mpLabel) int { return strings.Compare(*a.name, *b.name) })
			for i := 1; i < len(labels); i++ {
				if *labels[i].name == *labels[i-1].name {
					drops[mpReasonInvalid]++
					continue series
				}
			}
			if !w.admitValues(mpSamples(typ, s), values, false) {
				continue
			}
			met := w.a.metrics.get()
			met.Label = w.a.pairPtrs.get(len(labels))
			for i, l := range labels {
				if l.pair != nil {
					met.Label[i] = l.pair
					continue
				}
				lp := w.a.pairs.get()
				lp.Name, lp.Value = l.name, l.value
				met.Label[i] = lp
			}
			switch typ {
			case dto.MetricType_COUNTER, dto.MetricType_GAUGE:
				w.a.value(met, typ, s.Value)
			case dto.MetricType_SUMMARY:
				count := uint64(0)
				if s.Count > 0 && s.Count < math.MaxUint64 { // NaN and negatives (corruption) become 0
					count = uint64(s.Count)
				}
				sum := w.a.summaries.get()
				sum.SampleCount = w.a.uint(count)
				sum.SampleSum = w.a.float(s.Sum)
				met.Summary = sum
			case dto.MetricType_HISTOGRAM:
				met.Histogram = mpHistogram(&w.a, s)
			}
			mf.Metric = append(mf.Metric, met)
		}
		if len(mf.Metric) > 0 {
			if !slices.IsSortedFunc(mf.Metric, compareMetrics) {
				slices.SortFunc(mf.Metric, compareMetrics)
			}
			w.app = append(w.app, mf)
		}
	}
	return drops
}

// mpDTOType is the protobuf type of a family type of the files, or -1.
func mpDTOType(t string) dto.MetricType {
	switch t {
	case multiproc.TypeCounter:
		return dto.MetricType_COUNTER
	case multiproc.TypeGauge:
		return dto.MetricType_GAUGE
	case multiproc.TypeSummary:
		return dto.MetricType_SUMMARY
	case multiproc.TypeHistogram:
		return dto.MetricType_HISTOGRAM
	}
	return -1
}

// mpSamples is the number of series a merged series makes in the answer.
func mpSamples(t dto.MetricType, s *multiproc.Series) int {
	switch t {
	case dto.MetricType_SUMMARY:
		return 2
	case dto.MetricType_HISTOGRAM:
		n := len(s.Buckets) + 2
		if len(s.Buckets) == 0 || !math.IsInf(s.Buckets[len(s.Buckets)-1].UpperBound, 1) {
			n++ // the +Inf bucket the text formats add
		}
		return n
	}
	return 1
}

// mpHistogram is a histogram whose counts may be fractional, as the files hold floats.
// Integral counts are written as integers (what every reader expects); otherwise the float
// fields of dto.Histogram carry them.
func mpHistogram(a *arena, s *multiproc.Series) *dto.Histogram {
	ints := integral(s.Count)
	for _, b := range s.Buckets {
		ints = ints && integral(b.Count)
	}
	h := a.hists.get()
	h.SampleSum = a.float(s.Sum)
	if ints {
		h.SampleCount = a.uint(uint64(s.Count))
	} else {
		h.SampleCountFloat = a.float(s.Count)
	}
	h.Bucket = a.bucketPtr.get(len(s.Buckets))
	for i, b := range s.Buckets {
		db := a.buckets.get()
		db.UpperBound = a.float(b.UpperBound)
		if ints {
			db.CumulativeCount = a.uint(uint64(b.Count))
		} else {
			db.CumulativeCountFloat = a.float(b.Count)
		}
		h.Bucket[i] = db
	}
	return h
}

func integral(v float64) bool { return v >= 0 && v <= 1<<53 && v == math.Trunc(v) }

// writeByReason writes one series of fam per reason: every known reason (0 when absent), then
// any reason a reader added since, so a new reason is never lost.
func writeByReason(w *Writer, fam *Family, counts map[string]float64, known []string) {
	for _, r := range known {
		w.Value(fam, counts[r], r)
	}
	for r, n := range counts {
		if !slices.Contains(known, r) {
			w.Value(fam, n, r)
		}
	}
}
