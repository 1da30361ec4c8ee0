package collector

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

var fakeMany = gauge(testKind, "fake_many", "Many series.", "i", "pad")

// manySource writes n series of fake_many, each with a label value of pad bytes. When done
// is set, it receives how many series the Writer took once Scrape is over. ids, when set,
// are the values of the i label (made beforehand, so that Scrape allocates nothing itself).
type manySource struct {
	cfg  Config
	n    int
	pad  int
	done chan int
	ids  []string
}

func (m *manySource) Kind() Kind     { return testKind }
func (m *manySource) Config() Config { return m.cfg }
func (m *manySource) Scrape(_ context.Context, w *Writer) error {
	pad := strings.Repeat("x", m.pad)
	for i := range m.n {
		id := ""
		if m.ids != nil {
			id = m.ids[i]
		} else {
			id = strconv.Itoa(i)
		}
		w.Value(fakeMany, float64(i), id, pad)
	}
	if m.done != nil {
		m.done <- w.Series()
	}
	return nil
}

// series counts the series of a family in an answer.
func series(mfs []*dto.MetricFamily, name string) int {
	if f := findFamily(mfs, name); f != nil {
		return len(f.GetMetric())
	}
	return 0
}

// A source over the series cap gives the first MaxSeriesPerSource series and counts the
// rest, whatever it holds (10,000 uWSGI custom metrics here; the decoder keeps up to 16,384).
func TestSeriesCapDropsAndCounts(t *testing.T) {
	metrics := map[string]any{}
	for i := range 10_000 {
		metrics[fmt.Sprintf("app.m%06d", i)] = map[string]any{"type": 1, "value": i}
	}
	src, err := NewUWSGI(Config{Address: uwsgiWriteJSON(t, map[string]any{"version": "2.0", "metrics": metrics}), Name: "u"}, UWSGIOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := New([]Source{src}, Options{MaxSeriesPerSource: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for scrape := 1; scrape <= 2; scrape++ {
		mfs, err := e.Gatherer(t.Context(), 0).Gather()
		if err != nil {
			t.Fatal(err)
		}
		// 6 instance series (version, listen queue, its errors, signal queue, load, workers),
		// then the first 994 metrics by name.
		if n := series(mfs, "uwsgi_metric_value"); n != 994 {
			t.Fatalf("scrape %d: %d uwsgi_metric_value series, want 994", scrape, n)
		}
		if last := findFamily(mfs, "uwsgi_metric_value").GetMetric()[993]; last.GetLabel()[0].GetValue() != "app.m000993" {
			t.Fatalf("scrape %d: last series kept %v", scrape, last)
		}
		if got := gather(t, staticGatherer(mfs), "uwsgi_up"); got != "uwsgi_up{stats_uri=u} 1\n" {
			t.Fatalf("scrape %d: %s", scrape, got)
		}
		if got := e.droppedCount("uwsgi", "u", DropSeriesLimit); got != float64(scrape*(10_000-994)) {
			t.Fatalf("scrape %d: dropped %v, want %d", scrape, got, scrape*(10_000-994))
		}
	}
	st := e.Status()
	if len(st) != 1 || st[0].Series != 1000 || st[0].Dropped != 10_000-994 || !st[0].Up {
		t.Fatalf("status %+v", st)
	}
}

// A label value over the cap drops its series, not the source (a 4 MiB mountpoint once made
// a 12.6 MB answer; the uWSGI decoder now also cuts strings to 1 KiB).
func TestLabelValueCap(t *testing.T) {
	long := strings.Repeat("/m", 500) // 1,000 bytes: kept by the decoder, over a 512-byte cap
	doc := map[string]any{"workers": []any{
		map[string]any{"id": 1, "apps": []any{map[string]any{"id": 0, "mountpoint": long, "requests": 3}}},
		map[string]any{"id": 2, "apps": []any{map[string]any{"id": 0, "mountpoint": "/ok", "requests": 4}}},
		map[string]any{"id": 3, "apps": []any{map[string]any{"id": 0, "mountpoint": strings.Repeat("/m", 2<<20), "requests": 5}}},
	}}
	src, err := NewUWSGI(Config{Address: uwsgiWriteJSON(t, doc), Name: "u"}, UWSGIOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := New([]Source{src}, Options{MaxLabelValueLength: 512})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(body) > 64<<10 {
		t.Fatalf("answer of %d bytes", len(body))
	}
	for _, want := range []string{
		`uwsgi_worker_app_requests_total{app_id="0",chdir="",mountpoint="/ok",stats_uri="u",worker_id="2"} 4`,
		`uwsgi_up{stats_uri="u"} 1`,
		// workers 1 and 3 (cut to 1 KiB by the decoder), three app series each
		`wsgi_exporter_series_dropped_total{kind="uwsgi",reason="label_value_too_long",source="u"} 6`,
		`uwsgi_stats_dropped_entries{part="strings",stats_uri="u"} 1`,
	} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("answer lacks %s", want)
		}
	}
	if strings.Contains(string(body), `worker_id="1"} 3`) {
		t.Error("the series with the long mountpoint is served")
	}
}

// The deadline also bounds building the series: a source whose translation is still writing
// when its deadline passes is down (timeout) and its series are dropped, instead of the
// answer waiting for all of them; and the abandoned translation stops taking series (and
// memory) at the deadline.
func TestDeadlineStopsBuilding(t *testing.T) {
	big := &manySource{cfg: Config{Address: "big"}, n: 3_000_000, pad: 16, done: make(chan int, 1)}
	ok := fake("ok", 1)
	e, err := New([]Source{big, ok}, Options{MaxSeriesPerSource: 10_000_000}) // the deadline, not the cap
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	mfs, err := e.Gatherer(t.Context(), 50*time.Millisecond).Gather()
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 20*time.Second { // a hang guard: unbounded, this runs for minutes
		t.Fatalf("the answer took %v", el)
	}
	if got := gather(t, staticGatherer(mfs), "fake_up"); got != "fake_up{source=big} 0\nfake_up{source=ok} 1\n" {
		t.Fatalf("%s", got)
	}
	if n := series(mfs, "fake_many"); n != 0 {
		t.Fatalf("%d series of the late source served", n)
	}
	if got := e.errorCount("fake", "big", fetch.ReasonTimeout); got != 1 {
		t.Fatalf("timeouts %v, want 1", got)
	}
	if taken := <-big.done; taken >= big.n {
		t.Fatalf("the abandoned translation took all %d series", taken)
	}
}

// An answer that cannot be written by the scraper's deadline (here a scraper that does not
// read) is cut off: the connection is closed, so the scraper sees a failed scrape, and the
// request does not hold its goroutine and memory forever.
func TestAnswerDeadlineCutsSlowScraper(t *testing.T) {
	rec := &recorder{}
	e, err := New([]Source{&manySource{cfg: Config{Address: "big"}, n: 20_000, pad: 1000}}, Options{Logger: slog.New(rec), TimeoutOffset: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	h := e.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n%s: 1\r\n\r\n", ScrapeTimeoutHeader)
	select {
	case <-done:
	case <-time.After(30 * time.Second): // a hang guard; unbounded, the handler waits for the reader forever
		t.Fatal("the handler is still writing to a scraper that does not read")
	}
	// What the scraper gets is not a complete answer.
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Fatal("the cut answer reads as complete")
	}
	if n := rec.count(slog.LevelWarn, "answer cut off"); n != 1 {
		t.Fatalf("%d warnings about the cut answer", n)
	}
}

// A scraper that hangs up mid-scrape is not a failure of the source: nothing is counted, the
// source is not marked down, and nothing is logged above debug level.
func TestScraperHangUpIsNotASourceFailure(t *testing.T) {
	rec := &recorder{}
	entered := make(chan struct{}, 1)
	slow := &fakeSource{cfg: Config{Address: "slow", Timeout: time.Minute}, value: 1, fn: func(ctx context.Context) error {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return fetch.Wrap(fetch.ReasonTimeout, ctx.Err())
	}}
	e, err := New([]Source{slow}, Options{Logger: slog.New(rec)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-entered
	cancel() // the scraper hangs up
	<-errc
	srv.Close() // waits for the handler, which reports the source
	for _, r := range reasons {
		if got := e.errorCount("fake", "slow", r); got != 0 {
			t.Errorf("errors{reason=%s} = %v, want 0", r, got)
		}
	}
	if msgs := rec.atLeast(slog.LevelInfo); len(msgs) != 0 {
		t.Errorf("logged at info or above: %q", msgs)
	}
	if st := e.Status(); len(st) != 1 || st[0].Scraped {
		t.Errorf("status %+v: the abandoned scrape counts", st)
	}
}

// TestScrapeMemoryBound checks the bound docs/limits.md states for the series of one source:
// at most --scrape.max-series-per-source series, each at most seriesBytes (the labels' values
// are the source's own strings, not copied), whatever the source holds, for one text answer.
func TestScrapeMemoryBound(t *testing.T) {
	const max, attempted = 20_000, 1_000_000
	src := &manySource{cfg: Config{Address: "big"}, n: attempted, pad: 64, ids: make([]string, attempted)}
	for i := range src.ids {
		src.ids[i] = strconv.Itoa(i)
	}
	e, err := New([]Source{src}, Options{MaxSeriesPerSource: max})
	if err != nil {
		t.Fatal(err)
	}
	h := e.Handler()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	w := &discardResponse{h: http.Header{}}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	h.ServeHTTP(w, req)
	runtime.ReadMemStats(&after)
	if w.code != http.StatusOK || w.n < max*80 {
		t.Fatalf("status %d, %d bytes", w.code, w.n)
	}
	if st := e.Status(); st[0].Series != max || st[0].Dropped != attempted-max {
		t.Fatalf("status %+v", st[0])
	}
	got, bound := after.TotalAlloc-before.TotalAlloc, max*seriesBytes(3)+fixedScrapeBytes
	t.Logf("allocated %d bytes, bound %d", got, bound)
	if got > bound {
		t.Fatalf("one scrape allocated %d bytes, over the bound %d", got, bound)
	}
}
