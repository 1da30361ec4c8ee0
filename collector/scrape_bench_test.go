package collector

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/wsgi-exporter/wsgi_exporter/gunicorn"
	"github.com/wsgi-exporter/wsgi_exporter/uwsgi"
)

// End-to-end scrape benchmarks: one GET of /metrics through the exporter's handler, wired as
// main wires it (build info, Go and process metrics: SelfMetrics; promhttp_metric_handler_*), the answer
// encoded and thrown away. Each reports its allocations per scrape and, where the source
// exports a known number of series, ns and bytes per series. BenchmarkScrapeNoSource is the
// fixed cost every scrape pays; the others include it.
//
//	go test -run '^$' -bench BenchmarkScrape -benchmem ./collector/

// discardResponse is a ResponseWriter that keeps the status and headers and drops the body.
type discardResponse struct {
	h    http.Header
	code int
	n    int
}

func (d *discardResponse) Header() http.Header { return d.h }
func (d *discardResponse) WriteHeader(c int)   { d.code = c }
func (d *discardResponse) Write(b []byte) (int, error) {
	if d.code == 0 {
		d.code = 200
	}
	d.n += len(b)
	return len(b), nil
}

// benchHandler wires exp's /metrics handler as main does.
func benchHandler(b *testing.B, exp *Exporter) http.Handler {
	b.Helper()
	return exp.Handler()
}

// benchScrape runs the handler once per iteration with the Accept header given; series is
// the number of series the sources export (0: unknown), for the per-series figures.
func benchScrape(b *testing.B, h http.Handler, accept string, series int) {
	b.Helper()
	req, err := http.NewRequest("GET", "/metrics", nil)
	if err != nil {
		b.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	w := &discardResponse{h: http.Header{}}
	// One scrape first: the first answer is larger (it builds caches).
	h.ServeHTTP(w, req)
	if w.code != 200 {
		b.Fatalf("status %d", w.code)
	}
	b.ReportAllocs()
	b.ResetTimer()
	bytes := 0
	for b.Loop() {
		clear(w.h)
		w.code, w.n = 0, 0
		h.ServeHTTP(w, req)
		if w.code != 200 {
			b.Fatalf("status %d", w.code)
		}
		bytes += w.n
	}
	b.ReportMetric(float64(bytes)/float64(b.N), "answer_bytes/op")
	if series > 0 {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(series), "ns/series")
	}
}

const (
	acceptText = "text/plain; version=0.0.4"
	acceptOM   = "application/openmetrics-text; version=1.0.0"
)

func benchFormats(b *testing.B, h http.Handler, series int) {
	for _, f := range []struct{ name, accept string }{{"text", acceptText}, {"openmetrics", acceptOM}} {
		b.Run(f.name, func(b *testing.B) { benchScrape(b, h, f.accept, series) })
	}
}

// benchExporter is an exporter of srcs with main's defaults: its own process and Go metrics
// are gathered at most once a second, so the kinds' benchmarks leave them out (the fixed cost
// is BenchmarkScrapeNoSource's).
func benchExporter(b *testing.B, srcs ...Source) *Exporter {
	b.Helper()
	return benchExporterAge(b, time.Second, srcs...)
}

func benchExporterAge(b *testing.B, selfMaxAge time.Duration, srcs ...Source) *Exporter {
	b.Helper()
	e, err := New(srcs, Options{MaxRequestsInFlight: 40, SelfMetricsMaxAge: selfMaxAge, Self: NewSelfMetrics()})
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// BenchmarkScrapeNoSource is the fixed cost of a scrape: the exporter's own metrics only,
// gathered for every answer (fresh, as at Prometheus' usual intervals) or reused within a
// second (cached, as back-to-back scrapes get them).
func BenchmarkScrapeNoSource(b *testing.B) {
	b.Run("fresh", func(b *testing.B) { benchFormats(b, benchHandler(b, benchExporterAge(b, 0)), 0) })
	b.Run("cached", func(b *testing.B) { benchFormats(b, benchHandler(b, benchExporterAge(b, time.Second)), 0) })
}

// uwsgiBenchSource serves a stats document of n workers from a file.
func uwsgiBenchSource(b *testing.B, n int, cores bool) Source {
	path := filepath.Join(b.TempDir(), "stats.json")
	if err := os.WriteFile(path, uwsgiBenchDoc(b, n), 0o644); err != nil {
		b.Fatal(err)
	}
	src, err := NewUWSGI(Config{Address: "file://" + path}, UWSGIOptions{CollectCores: cores})
	if err != nil {
		b.Fatal(err)
	}
	return src
}

// BenchmarkScrapeUWSGI64 scrapes a 64-worker stats document (82 KB, read from a file).
func BenchmarkScrapeUWSGI64(b *testing.B) {
	benchSources(b, uwsgiBenchSource(b, 64, false))
}

// BenchmarkScrapeUWSGI256 scrapes a 256-worker stats document.
func BenchmarkScrapeUWSGI256(b *testing.B) {
	exp := benchExporter(b, uwsgiBenchSource(b, 256, false))
	series := sourceSeries(b, exp)
	benchScrape(b, benchHandler(b, exp), acceptText, series)
}

// sourceSeries counts the series an exporter serves from its sources (its own metrics,
// up and the scrape duration and errors left out), for the per-series figures.
func sourceSeries(b *testing.B, exp *Exporter) int {
	b.Helper()
	fams, err := exp.Gatherer(context.Background(), 0).Gather()
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, f := range fams {
		name := f.GetName()
		if strings.HasSuffix(name, "_up") || strings.HasPrefix(name, "wsgi_exporter_") {
			continue
		}
		n += len(f.GetMetric())
	}
	return n
}

// benchSources runs every format's benchmark of an exporter of srcs.
func benchSources(b *testing.B, srcs ...Source) {
	exp := benchExporter(b, srcs...)
	series := sourceSeries(b, exp)
	benchFormats(b, benchHandler(b, exp), series)
}

// BenchmarkScrapeNginx scrapes one stub_status page served on a unix socket.
func BenchmarkScrapeNginx(b *testing.B) {
	body, err := os.ReadFile(filepath.Join(nginxFixtures, "stub_status_after_load_http.txt"))
	if err != nil {
		b.Fatal(err)
	}
	sock := serveNginxFixture(b, body)
	src, err := NewNginx(Config{Address: "unix:" + sock + ":/stub_status"}, NginxOptions{})
	if err != nil {
		b.Fatal(err)
	}
	benchSources(b, src)
}

// mpBenchDir writes a directory of workers processes: per process 200 counters, 50 gauges
// (mode all: one series per process) and 20 histograms of 10 buckets.
func mpBenchDir(b *testing.B, workers int) string {
	dir := b.TempDir()
	for w := range workers {
		pid := 1000 + w
		var counters, gauges, hists []mpEntry
		for i := range 200 {
			counters = append(counters, mpEntry{fmt.Sprintf(`["app_requests", "app_requests_total", {"method": "GET", "path": "/p%d", "status": "200"}, "Requests."]`, i), float64(i)})
		}
		for i := range 50 {
			gauges = append(gauges, mpEntry{fmt.Sprintf(`["app_inflight", "app_inflight", {"queue": "q%d"}, "In flight."]`, i), float64(i)})
		}
		for i := range 20 {
			ls := fmt.Sprintf(`{"handler": "h%d"}`, i)
			for _, le := range []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "+Inf"} {
				hists = append(hists, mpEntry{fmt.Sprintf(`["app_latency_seconds", "app_latency_seconds_bucket", {"handler": "h%d", "le": "%s"}, "Latency."]`, i, le), 1})
			}
			hists = append(hists, mpEntry{fmt.Sprintf(`["app_latency_seconds", "app_latency_seconds_count", %s, "Latency."]`, ls), 10})
			hists = append(hists, mpEntry{fmt.Sprintf(`["app_latency_seconds", "app_latency_seconds_sum", %s, "Latency."]`, ls), 0.5})
		}
		mpWriteDB(b, dir, fmt.Sprintf("counter_%d.db", pid), counters...)
		mpWriteDB(b, dir, fmt.Sprintf("gauge_all_%d.db", pid), gauges...)
		mpWriteDB(b, dir, fmt.Sprintf("histogram_%d.db", pid), hists...)
	}
	return dir
}

// BenchmarkScrapeMultiproc scrapes a multiprocess directory of 16 processes (warm: the files
// stay mapped between scrapes).
func BenchmarkScrapeMultiproc(b *testing.B) {
	dir := mpBenchDir(b, 16)
	benchSources(b, newMP(dir, MultiprocOptions{}))
}

// BenchmarkScrapeGunicornProc scrapes a gunicorn master of 8 workers (the /proc reads
// replaced by a fixed answer: gunicorn/ benchmarks those).
func BenchmarkScrapeGunicornProc(b *testing.B) {
	src := newGP("/run/g.pid", &fakeProcReader{m: master(100, 101, 102, 103, 104, 105, 106, 107, 108)})
	benchSources(b, src)
}

// BenchmarkScrapeStatsd scrapes a statsd listener fed the captured gunicorn lines (two tag
// groups).
func BenchmarkScrapeStatsd(b *testing.B) {
	s, err := NewGunicornStatsd(Config{Address: "127.0.0.1:0", Name: "g"}, gunicorn.StatsdConfig{TagLabels: []string{"env", "svc"}})
	if err != nil {
		b.Fatal(err)
	}
	src := s.(*GunicornStatsdSource)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = src.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	<-src.Listener().Ready()
	for _, d := range statsdFixture(b) {
		src.State().HandleDatagram(d)
	}
	benchSources(b, src)
}

// BenchmarkPerSeries is the cost per series of the path from typed data to bytes, without
// the read: a decoded 64-worker uWSGI document translated through a Writer (translate), then
// sorted and written as text as the handler does (text), against expfmt encoding the same
// families already built as client_model structs (expfmt-encode-only: the encoding itself).
func BenchmarkPerSeries(b *testing.B) {
	st, err := uwsgi.Decode(uwsgiBenchDoc(b, 64))
	if err != nil {
		b.Fatal(err)
	}
	src := &uwsgiSource{cfg: Config{Kind: "uwsgi", Address: "unix:///run/uwsgi/stats.sock"}}
	build := func() (*Writer, []answerFamily) {
		w := newWriter(time.Time{}, nil, writerLimits{maxSeries: DefaultMaxSeriesPerSource, maxLabel: DefaultMaxLabelValueLength},
			src.Kind(), src.Config().SourceName(), noLabels)
		uwsgiTranslate(w, st, false)
		return w, assemble(nil, []*sourceOut{{src: src, w: w}})
	}
	w, fams := build()
	series := w.Series()
	w.release()
	perSeries := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(series), "ns/series")
	}
	b.Run("translate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			w := newWriter(time.Time{}, nil, writerLimits{maxSeries: DefaultMaxSeriesPerSource, maxLabel: DefaultMaxLabelValueLength},
				src.Kind(), src.Config().SourceName(), noLabels)
			uwsgiTranslate(w, st, false)
			w.release()
		}
		perSeries(b)
	})
	b.Run("text", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, flushAt+4096)
		for b.Loop() {
			w, fams := build()
			for _, f := range fams {
				buf = f.ours.append(buf[:0], false, func(b []byte) []byte { return b[:0] })
			}
			w.release()
		}
		perSeries(b)
	})
	b.Run("expfmt-encode-only", func(b *testing.B) {
		_, fams = build()
		mfs := toDTO(fams)
		enc := expfmt.NewEncoder(io.Discard, expfmt.NewFormat(expfmt.TypeTextPlain))
		b.ReportAllocs()
		for b.Loop() {
			for _, mf := range mfs {
				if err := enc.Encode(mf); err != nil {
					b.Fatal(err)
				}
			}
		}
		perSeries(b)
	})
}
