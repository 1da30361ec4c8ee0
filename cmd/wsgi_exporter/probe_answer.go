package main

import (
	"bufio"
	"compress/gzip"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/wsgi-exporter/wsgi_exporter/collector"
	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// A probe's answer is small (one target) and frequent (a fleet is probed every interval):
// it is encoded here, with pooled buffers and compressors, rather than through a registry and
// promhttp, which allocate a new compressor per answer.

var (
	probeGzip = sync.Pool{New: func() any { w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed); return w }}
	probeBuf  = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 16<<10) }}
)

// writeProbeAnswer sorts the families by name and encodes them as the request asks: text,
// OpenMetrics or protobuf, gzip-compressed when accepted.
func writeProbeAnswer(w http.ResponseWriter, r *http.Request, mfs []*dto.MetricFamily) error {
	slices.SortFunc(mfs, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	format := expfmt.NegotiateAccept(r.Header, expfmt.DefaultOpenMetricsAcceptedFormats()...)
	h := w.Header()
	h.Add("Vary", "Accept")
	h.Add("Vary", "Accept-Encoding")
	h.Set("Content-Type", string(format))
	var out io.Writer = w
	if gzipAccepted(r.Header.Get("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		gz := probeGzip.Get().(*gzip.Writer)
		gz.Reset(w)
		defer func() {
			gz.Reset(nil)
			probeGzip.Put(gz)
		}()
		defer gz.Close()
		out = gz
	}
	bw := probeBuf.Get().(*bufio.Writer)
	bw.Reset(out)
	defer func() {
		bw.Reset(nil)
		probeBuf.Put(bw)
	}()
	enc := expfmt.NewEncoder(bw, format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	if c, ok := enc.(expfmt.Closer); ok {
		if err := c.Close(); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// gzipAccepted reports whether an Accept-Encoding header takes gzip (or *) with a quality
// above 0.
func gzipAccepted(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		coding = strings.TrimSpace(coding)
		if coding != "gzip" && coding != "*" {
			continue
		}
		q := 1.0
		if k, v, ok := strings.Cut(strings.TrimSpace(params), "="); ok && strings.TrimSpace(k) == "q" {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				q = f
			}
		}
		return q > 0
	}
	return false
}

// probeResult are the probe's own series: how long it took, why it failed, what was left out.
func probeResult(st collector.SourceStatus, took time.Duration) []*dto.MetricFamily {
	gauge := func(name, help string) *dto.MetricFamily {
		return &dto.MetricFamily{Name: &name, Help: &help, Type: dto.MetricType_GAUGE.Enum()}
	}
	add := func(mf *dto.MetricFamily, v float64, labels ...string) {
		m := &dto.Metric{Gauge: &dto.Gauge{Value: &v}}
		for i := 0; i+1 < len(labels); i += 2 {
			m.Label = append(m.Label, &dto.LabelPair{Name: &labels[i], Value: &labels[i+1]})
		}
		mf.Metric = append(mf.Metric, m)
	}
	duration := gauge("wsgi_exporter_probe_duration_seconds",
		"How long the probe took: the allow-list check, the scrape of the target and building the answer.")
	add(duration, took.Seconds())
	failedReason := ""
	if !st.Up {
		failedReason = st.LastErrorReason
		if failedReason == "" {
			failedReason = fetch.ReasonOther
		}
	}
	failed := gauge("wsgi_exporter_probe_failed",
		"Why the probe failed: 1 for the reason of the failure (the reasons of wsgi_exporter_scrape_errors_total), 0 for the others; all 0 when the target is up.")
	for _, reason := range fetch.Reasons {
		v := 0.0
		if reason == failedReason {
			v = 1
		}
		add(failed, v, "reason", reason)
	}
	dropped := gauge("wsgi_exporter_probe_series_dropped",
		"Series of the target left out of this answer (over --scrape.max-series-per-source or --scrape.max-label-value-length).")
	add(dropped, float64(st.Dropped))
	return []*dto.MetricFamily{duration, failed, dropped}
}
