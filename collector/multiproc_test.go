package collector

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/wsgi-exporter/wsgi_exporter/multiproc"
)

type mpEntry struct {
	key string
	v   float64
}

// mpWriteDB writes a value-only .db file as the 0.16 client lays it out.
func mpWriteDB(t testing.TB, dir, name string, entries ...mpEntry) {
	t.Helper()
	b := make([]byte, 8)
	for _, e := range entries {
		n := len(e.key)
		b = binary.LittleEndian.AppendUint32(b, uint32(n))
		b = append(b, e.key...)
		b = append(b, bytes.Repeat([]byte(" "), 8-(n+4)%8)...)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(e.v))
	}
	binary.LittleEndian.PutUint32(b, uint32(len(b)))
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func mpExporter(t *testing.T, srcs ...Source) *Exporter {
	t.Helper()
	e, err := New(srcs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func mpScrapeText(t *testing.T, e *Exporter, names ...string) string {
	t.Helper()
	g := e.Gatherer(t.Context(), 5*time.Second)
	fams, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	keep := map[string]bool{}
	for _, n := range names {
		keep[n] = true
	}
	for _, f := range fams {
		if len(names) == 0 || keep[f.GetName()] {
			if err := enc.Encode(f); err != nil {
				t.Fatal(err)
			}
		}
	}
	return buf.String()
}

// TestMultiprocDirLabel: with two directories the application's series carry
// multiproc_dir; a series that already has such a label is dropped and counted.
func TestMultiprocDirLabel(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	mpWriteDB(t, a, "counter_1.db", mpEntry{`["req", "req_total", {"code": "200"}, "Requests."]`, 2})
	mpWriteDB(t, b, "counter_1.db", mpEntry{`["req", "req_total", {"code": "200"}, "Requests."]`, 5},
		mpEntry{`["req", "req_total", {"multiproc_dir": "mine"}, "Requests."]`, 1})
	mk := func(dir string, label bool) Source {
		return newMP(dir, MultiprocOptions{DirLabel: label})
	}
	e := mpExporter(t, mk(a, true), mk(b, true))
	got := mpScrapeText(t, e, "req_total", "multiproc_entries_dropped_total")
	want := `# HELP multiproc_entries_dropped_total Entries or series of the application left out of a scrape's output, by reason.
# TYPE multiproc_entries_dropped_total counter
`
	for _, d := range []string{a, b} {
		for _, r := range []string{"bad_key", "bad_sample", "invalid", "key_too_long", "label_conflict", "name_conflict", "type_conflict"} {
			v := "0"
			if d == b && r == "label_conflict" {
				v = "1"
			}
			want += `multiproc_entries_dropped_total{multiproc_dir="` + d + `",reason="` + r + `"} ` + v + "\n"
		}
	}
	want += `# HELP req_total Requests.
# TYPE req_total counter
req_total{code="200",multiproc_dir="` + a + `"} 2
req_total{code="200",multiproc_dir="` + b + `"} 5
`
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	// One directory: no label added, the user's multiproc_dir label is kept.
	e = mpExporter(t, mk(b, false))
	got = mpScrapeText(t, e, "req_total")
	if !strings.Contains(got, `req_total{multiproc_dir="mine"} 1`) || !strings.Contains(got, `req_total{code="200"} 5`) {
		t.Fatalf("single directory:\n%s", got)
	}
}

// TestMultiprocErrorsAndHealth: a missing directory is down with reason not_found; file
// problems are counted per scrape; files and bytes are reported by type.
func TestMultiprocErrorsAndHealth(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	e := mpExporter(t, newMP(missing, MultiprocOptions{}))
	out := mpScrapeText(t, e, "multiproc_up", "wsgi_exporter_scrape_errors_total")
	if !strings.Contains(out, `multiproc_up{multiproc_dir="`+missing+`"} 0`) ||
		!strings.Contains(out, `wsgi_exporter_scrape_errors_total{kind="multiproc",reason="not_found",source="`+missing+`"} 1`) {
		t.Fatalf("missing directory:\n%s", out)
	}

	mpWriteDB(t, dir, "counter_1.db", mpEntry{`["req", "req_total", {}, "Requests."]`, 2})
	mpWriteDB(t, dir, "gauge_all_1.db", mpEntry{`["g", "g", {}, "G."]`, 3})
	if err := os.WriteFile(filepath.Join(dir, "counter_2.db"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := newMP(dir, MultiprocOptions{})
	e = mpExporter(t, src)
	mpScrapeText(t, e)
	out = mpScrapeText(t, e, "multiproc_up", "multiproc_file_errors_total", "multiproc_files", "multiproc_used_bytes", "req_total", "g")
	for _, want := range []string{
		`multiproc_up{multiproc_dir="` + dir + `"} 1`,
		`multiproc_file_errors_total{multiproc_dir="` + dir + `",reason="short"} 2`,
		`multiproc_file_errors_total{multiproc_dir="` + dir + `",reason="corrupt"} 0`,
		`multiproc_files{multiproc_dir="` + dir + `",type="counter"} 2`,
		`multiproc_files{multiproc_dir="` + dir + `",type="gauge"} 1`,
		`multiproc_used_bytes{multiproc_dir="` + dir + `",type="counter"} 64`,
		`req_total 2`,
		`g{pid="1"} 3`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}

// TestMultiprocFloatHistogram: fractional bucket counts (only a writer other than the
// Python client makes them) are served as float counts, integral ones as integers.
func TestMultiprocFloatHistogram(t *testing.T) {
	dir := t.TempDir()
	mpWriteDB(t, dir, "histogram_1.db",
		mpEntry{`["h", "h_bucket", {"le": "1.0"}, "H."]`, 1.5},
		mpEntry{`["h", "h_bucket", {"le": "+Inf"}, "H."]`, 1},
		mpEntry{`["h", "h_sum", {}, "H."]`, 0.25},
		mpEntry{`["i", "i_bucket", {"le": "1.0"}, "I."]`, 2},
		mpEntry{`["i", "i_bucket", {"le": "+Inf"}, "I."]`, 1},
		mpEntry{`["i", "i_sum", {}, "I."]`, 0.5})
	e := mpExporter(t, newMP(dir, MultiprocOptions{}))
	want := `# HELP h H.
# TYPE h histogram
h_bucket{le="1"} 1.5
h_bucket{le="+Inf"} 2.5
h_sum 0.25
h_count 2.5
# HELP i I.
# TYPE i histogram
i_bucket{le="1"} 2
i_bucket{le="+Inf"} 3
i_sum 0.5
i_count 3
`
	if got := mpScrapeText(t, e, "h", "i"); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

// TestMultiprocNegotiation: text, OpenMetrics and protobuf all serve the merged fixture.
func TestMultiprocNegotiation(t *testing.T) {
	e := mpExporter(t, newTestMultiproc(filepath.Join(mpFixtures, "dirs", "small_016"), multiproc.Options{}))
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	for accept, ctype := range map[string]string{
		"text/plain; version=0.0.4":                   "text/plain",
		"application/openmetrics-text; version=1.0.0": "application/openmetrics-text",
		"application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited": "application/vnd.google.protobuf",
	} {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		req.Header.Set("Accept", accept)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		dec := expfmt.NewDecoder(resp.Body, expfmt.ResponseFormat(resp.Header))
		n, hist := 0, 0
		for {
			var f dto.MetricFamily
			if err := dec.Decode(&f); err != nil {
				break
			}
			if strings.HasPrefix(f.GetName(), "app_histogram_021_seconds") {
				hist += len(f.GetMetric())
			}
			n++
		}
		resp.Body.Close()
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), ctype) || n < 34 || hist != 2 {
			t.Errorf("%s: content type %q, %d families, %d histogram series", accept, resp.Header.Get("Content-Type"), n, hist)
		}
	}
}

// TestMultiprocLint: client_golang's linter finds nothing in our own metrics.
func TestMultiprocLint(t *testing.T) {
	src := newTestMultiproc(filepath.Join(mpFixtures, "dirs", "edge_016"), multiproc.Options{ProcRoot: "/proc", DropDeadLiveGauges: true})
	problems, err := testutil.GatherAndLint(staticGatherer(scrapeFamilies(t, src)))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "multiproc_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}

type mpCountHandler struct {
	mu *sync.Mutex
	n  *int
}

func (h mpCountHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h mpCountHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "skipping a file of the multiprocess directory" {
		h.mu.Lock()
		*h.n++
		h.mu.Unlock()
	}
	return nil
}
func (h mpCountHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h mpCountHandler) WithGroup(string) slog.Handler      { return h }

// TestMultiprocLogsOnce: a bad file is logged when it appears, not at every scrape, and
// again after it was fixed and broke anew.
func TestMultiprocLogsOnce(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "counter_1.db")
	if err := os.WriteFile(bad, []byte("garbage!garbage!"), 0o644); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	n := 0
	src := newMP(dir, MultiprocOptions{Logger: slog.New(mpCountHandler{&mu, &n})})
	scrape := func() {
		if err := src.Scrape(t.Context(), testWriter(src)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		scrape()
	}
	if n != 1 {
		t.Fatalf("logged %d times in 3 scrapes, want 1", n)
	}
	mpWriteDB(t, dir, "counter_1.db", mpEntry{`["a", "a_total", {}, "A."]`, 1})
	scrape()
	if err := os.WriteFile(bad, []byte("garbage!garbage!"), 0o644); err != nil {
		t.Fatal(err)
	}
	scrape()
	if n != 2 || src.fileErrors["corrupt"] != 4 {
		t.Fatalf("logged %d times, %v file errors; want 2 and 4 corrupt", n, src.fileErrors["corrupt"])
	}
}
