package collector

import (
	"math"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/wsgi-exporter/wsgi_exporter/multiproc"
)

// MultiprocKind is a prometheus_client multiprocess directory (PROMETHEUS_MULTIPROC_DIR).
var MultiprocKind = Kind{
	Name:        "multiproc",
	SourceLabel: "multiproc_dir",
	Title:       "prometheus_client multiprocess directory",
}

// The directory's own health metrics. Their names are reserved: an application family of
// the same name is dropped (reason name_conflict).
var (
	mpDirLabels  = []string{"multiproc_dir"}
	mpTypeLabels = []string{"multiproc_dir", "type"}

	mpFilesDesc = prometheus.NewDesc("multiproc_files",
		"Multiprocess .db files in the directory, by metric type.", mpTypeLabels, nil)
	mpFileBytesDesc = prometheus.NewDesc("multiproc_file_size_bytes",
		"Size on disk of the directory's .db files, by metric type.", mpTypeLabels, nil)
	mpUsedBytesDesc = prometheus.NewDesc("multiproc_used_bytes",
		"Bytes in use (the header's used field) of the .db files read in the last scrape, by metric type.", mpTypeLabels, nil)
	mpDeadFilesDesc = prometheus.NewDesc("multiproc_dead_process_files",
		"Files of the directory whose writer (the numeric id in the file name) no longer exists in /proc, by metric type.", mpTypeLabels, nil)
	mpProcessesDesc = prometheus.NewDesc("multiproc_processes",
		"Distinct writer ids in the directory's file names, by state: alive, dead (no /proc/<pid>), unknown (not a pid, or liveness checks off).",
		[]string{"multiproc_dir", "state"}, nil)
	mpEntriesDesc = prometheus.NewDesc("multiproc_entries",
		"Entries read from the directory's files in the last scrape.", mpDirLabels, nil)
	mpFamiliesDesc = prometheus.NewDesc("multiproc_families",
		"Application metric families merged from the directory in the last scrape.", mpDirLabels, nil)
	mpDeadLiveDesc = prometheus.NewDesc("multiproc_dead_live_files_skipped",
		"live* gauge files of dead processes left out of the last merge (--multiproc.drop-dead-live-gauges).", mpDirLabels, nil)
	mpFileErrorsDesc = prometheus.NewDesc("multiproc_file_errors_total",
		"Files skipped by a scrape, by reason (each scrape that skips a file counts it once).",
		[]string{"multiproc_dir", "reason"}, nil)
	mpDroppedDesc = prometheus.NewDesc("multiproc_entries_dropped_total",
		"Entries or series of the application left out of a scrape's output, by reason.",
		[]string{"multiproc_dir", "reason"}, nil)

	mpReservedNames = map[string]bool{
		"multiproc_up": true, "multiproc_files": true, "multiproc_file_size_bytes": true,
		"multiproc_used_bytes": true, "multiproc_dead_process_files": true,
		"multiproc_processes": true, "multiproc_entries": true, "multiproc_families": true,
		"multiproc_dead_live_files_skipped": true, "multiproc_file_errors_total": true,
		"multiproc_entries_dropped_total":       true,
		"wsgi_exporter_scrape_duration_seconds": true, "wsgi_exporter_scrape_errors_total": true,
	}

	mpFileReasons = []string{
		multiproc.FileReasonShort, multiproc.FileReasonTruncated, multiproc.FileReasonCorrupt,
		multiproc.FileReasonBadName, multiproc.FileReasonIgnored, multiproc.FileReasonVanished,
		multiproc.FileReasonPermission, multiproc.FileReasonRead,
	}
	mpDropReasons = []string{
		multiproc.EntryReasonBadKey, multiproc.EntryReasonBadSample, multiproc.EntryReasonTypeClash,
		mpReasonLabelConflict, mpReasonNameConflict, mpReasonInvalid,
	}
	mpTypes = []string{multiproc.TypeCounter, multiproc.TypeGauge, multiproc.TypeHistogram, multiproc.TypeSummary}
)

// Reasons a merged series is not exported.
const (
	mpReasonLabelConflict = "label_conflict" // has a label named multiproc_dir while the exporter adds one
	mpReasonNameConflict  = "name_conflict"  // family named like one of the exporter's own metrics
	mpReasonInvalid       = "invalid"        // client_golang rejects the name, a label or the help
)

// floatHistogram is a const histogram whose counts may be fractional, as the files hold
// floats. Integral counts are written as integers (what every reader expects); otherwise
// the float fields of dto.Histogram carry them.
type floatHistogram struct {
	desc   *prometheus.Desc
	labels []*dto.LabelPair
	s      *multiproc.Series
}

func (h *floatHistogram) Desc() *prometheus.Desc { return h.desc }

func integral(v float64) bool { return v >= 0 && v <= 1<<53 && v == math.Trunc(v) }

func (h *floatHistogram) Write(m *dto.Metric) error {
	m.Label = h.labels
	s := h.s
	ints := integral(s.Count)
	for _, b := range s.Buckets {
		ints = ints && integral(b.Count)
	}
	hist := &dto.Histogram{SampleSum: f64(s.Sum)}
	if ints {
		hist.SampleCount = u64(uint64(s.Count))
	} else {
		hist.SampleCountFloat = f64(s.Count)
	}
	hist.Bucket = make([]*dto.Bucket, len(s.Buckets))
	for i, b := range s.Buckets {
		db := &dto.Bucket{UpperBound: f64(b.UpperBound)}
		if ints {
			db.CumulativeCount = u64(uint64(b.Count))
		} else {
			db.CumulativeCountFloat = f64(b.Count)
		}
		hist.Bucket[i] = db
	}
	m.Histogram = hist
	return nil
}

func f64(v float64) *float64 { return &v }
func u64(v uint64) *uint64   { return &v }
