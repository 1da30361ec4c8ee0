package collector

import (
	"math"
	"slices"

	dto "github.com/prometheus/client_model/go"

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
