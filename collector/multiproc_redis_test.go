package collector

import (
	"bufio"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wsgi-exporter/wsgi_exporter/internal/redistest"
	"github.com/wsgi-exporter/wsgi_exporter/redisstore"
)

const mrFixtures = "../fixtures/redis"

// mrLoad writes fixtures/redis/store.jsonl (a store written by the test writer of
// gunicorn-prometheus-exporter's layout) into c.
func mrLoad(t testing.TB, c *redis.Client) {
	t.Helper()
	f, err := os.Open(filepath.Join(mrFixtures, "store.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	pipe := c.Pipeline()
	for sc.Scan() {
		var d struct {
			Key  string            `json:"key"`
			Hash map[string]string `json:"hash"`
		}
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			t.Fatal(err)
		}
		var args []any
		for k, v := range d.Hash {
			args = append(args, k, v)
		}
		pipe.HSet(context.Background(), d.Key, args...)
	}
	if _, err := pipe.Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// mrPut writes one sample in the layout.
func mrPut(t testing.TB, c *redis.Client, typeMode, pid, orig, value string) {
	t.Helper()
	sum := md5.Sum([]byte(orig))
	h := "gunicorn:" + typeMode + ":" + pid + ":%s:" + hex.EncodeToString(sum[:])
	ctx := context.Background()
	if err := c.HSet(ctx, strings.Replace(h, "%s", "metric", 1), "value", value, "timestamp", "0.0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.HSet(ctx, strings.Replace(h, "%s", "meta", 1), "original_key", orig).Err(); err != nil {
		t.Fatal(err)
	}
}

func newMR(t testing.TB, srv *redistest.Server, db int, opts MultiprocRedisOptions) *MultiprocRedis {
	t.Helper()
	opts.Target = redisstore.Target{URL: srv.UnixURL(db), Password: redistest.Password, Timeout: 5 * time.Second}
	s, err := NewMultiprocRedis(Config{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s.(*MultiprocRedis)
}

// TestMultiprocRedisConformance: the captured store, served through the scrape core, is what
// prometheus_client printed for the same samples written as multiprocess files, in client
// structures and once through the text format.
func TestMultiprocRedisConformance(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	mrLoad(t, srv.Client(0))
	want := mpParseExpected(t, filepath.Join(mrFixtures, "expected.txt"))
	s := newMR(t, srv, 0, MultiprocRedisOptions{})
	// Sums are exact (the multiprocess merge's), Python's rounded at each addition: equal up to
	// gamma(n) for the few values (3 processes) of each sum.
	for range 2 {
		fams := scrapeFamilies(t, s)
		mpCompareFamiliesWithin(t, mpAppFamilies(fams), want, mpGamma(8))
		mpCompareFamiliesWithin(t, mpAppFamilies(mpTextRoundTrip(t, fams)), want, mpGamma(8))
	}
	e := mpExporter(t, s)
	out := mpScrapeText(t, e, "multiproc_redis_up", "multiproc_redis_keys", "multiproc_redis_processes",
		"multiproc_redis_entries_dropped_total", "multiproc_redis_vanished_entries")
	u := srv.UnixURL(0)
	for _, line := range []string{
		`multiproc_redis_up{redis_url="` + u + `"} 1`,
		`multiproc_redis_processes{redis_url="` + u + `"} 3`,
		`multiproc_redis_keys{redis_url="` + u + `",type="summary"} 44`,
		`multiproc_redis_entries_dropped_total{reason="bad_value",redis_url="` + u + `"} 0`,
		`multiproc_redis_vanished_entries{redis_url="` + u + `",state="held"} 0`,
	} {
		if !strings.Contains(out, line+"\n") {
			t.Errorf("missing %q in:\n%s", line, out)
		}
	}
}

// TestMultiprocRedisNames: an application family named like one of the store's own metrics,
// or like a family an earlier source serves, is left out and counted; with two stores and
// the URL label, one family holds both stores' series.
func TestMultiprocRedisNames(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	for db := range 2 {
		c := srv.Client(db)
		mrPut(t, c, "counter", "7", `["req", "req_total", {}, "Requests."]`, "2.0")
		mrPut(t, c, "gauge_all", "7", `["multiproc_redis_keys", "multiproc_redis_keys", {}, "Impostor."]`, "1.0")
		mrPut(t, c, "gauge_all", "7", `["multiproc_files", "multiproc_files", {}, "Impostor."]`, "1.0")
	}
	dir := t.TempDir()
	mpWriteDB(t, dir, "counter_1.db", mpEntry{`["req", "req_total", {}, "Requests."]`, 40},
		mpEntry{`["multiproc_redis_processes", "multiproc_redis_processes_total", {}, "Impostor."]`, 1})
	a := newMR(t, srv, 0, MultiprocRedisOptions{URLLabel: true})
	b := newMR(t, srv, 1, MultiprocRedisOptions{URLLabel: true})
	e := mpExporter(t, a, b)
	out := mpScrapeText(t, e, "req_total", "multiproc_redis_keys", "multiproc_files", "multiproc_redis_entries_dropped_total")
	ua, ub := srv.UnixURL(0), srv.UnixURL(1)
	for _, line := range []string{
		`req_total{redis_url="` + ua + `"} 2`,
		`req_total{redis_url="` + ub + `"} 2`,
		`multiproc_redis_entries_dropped_total{reason="name_conflict",redis_url="` + ua + `"} 2`,
		`multiproc_redis_entries_dropped_total{reason="name_conflict",redis_url="` + ub + `"} 2`,
	} {
		if !strings.Contains(out, line+"\n") {
			t.Errorf("missing %q in:\n%s", line, out)
		}
	}
	if strings.Contains(out, "Impostor") || strings.Contains(out, "multiproc_files") {
		t.Errorf("an impostor family is served:\n%s", out)
	}
	// A directory without label first, then a store without label: the store's req_total is
	// refused; a directory's family may not take the store's names either.
	e = mpExporter(t, newMP(dir, MultiprocOptions{}), newMR(t, srv, 0, MultiprocRedisOptions{}))
	out = mpScrapeText(t, e, "req_total", "multiproc_redis_processes", "multiproc_redis_processes_total", "multiproc_redis_entries_dropped_total")
	if !strings.Contains(out, "req_total 40\n") || strings.Contains(out, "req_total 2\n") || strings.Contains(out, "Impostor") {
		t.Errorf("directory and store:\n%s", out)
	}
	if !strings.Contains(out, `multiproc_redis_entries_dropped_total{reason="name_conflict",redis_url="`+ua+`"} 3`) {
		t.Errorf("the store's req_total not counted as name_conflict:\n%s", out)
	}
}

// TestMultiprocRedisDown: a store that cannot be reached is down with reason connect, and
// neither the password nor the URL's user shows.
func TestMultiprocRedisDown(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	url := strings.Replace(srv.URL(0), "redis://", "redis://default@", 1)
	s, err := NewMultiprocRedis(Config{}, MultiprocRedisOptions{Target: redisstore.Target{URL: url, Password: redistest.Password}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Config().Address != srv.URL(0) {
		t.Fatalf("address %q", s.Config().Address)
	}
	e := mpExporter(t, s)
	if out := mpScrapeText(t, e, "multiproc_redis_up"); !strings.Contains(out, `multiproc_redis_up{redis_url="`+srv.URL(0)+`"} 1`) {
		t.Fatalf("up:\n%s", out)
	}
	srv.Stop()
	out := mpScrapeText(t, e)
	for _, want := range []string{
		`multiproc_redis_up{redis_url="` + srv.URL(0) + `"} 0`,
		`wsgi_exporter_scrape_errors_total{kind="multiproc_redis",reason="connect",source="` + srv.URL(0) + `"} 1`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, redistest.Password) || strings.Contains(out, "default@") {
		t.Error("the password or the user is in the answer")
	}
}
