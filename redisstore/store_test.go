package redisstore

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
	"github.com/wsgi-exporter/wsgi_exporter/internal/redistest"
	"github.com/wsgi-exporter/wsgi_exporter/internal/testcert"
	"github.com/wsgi-exporter/wsgi_exporter/internal/tlsconfig"
	"github.com/wsgi-exporter/wsgi_exporter/multiproc"
)

var (
	reqKey   = origKey("req", "req_total", map[string]string{"path": "/a"}, "Requests.")
	gaugeKey = origKey("busy", "busy", nil, "Busy workers.")
	allKey   = origKey("mem", "mem", nil, "Memory.")
	bucket05 = origKey("lat", "lat_bucket", map[string]string{"le": "0.5"}, "Latency.")
	bucketIn = origKey("lat", "lat_bucket", map[string]string{"le": "+Inf"}, "Latency.")
	latSum   = origKey("lat", "lat_sum", nil, "Latency.")
)

// TestReadMerges: counters and histograms summed over workers, gauges by their mode, the
// pid label from the key name, as the files would merge.
func TestReadMerges(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := srv.Client(0)
	for _, pid := range []string{"101", "102", "103"} {
		put(t, c, "gunicorn", "counter", pid, reqKey, 2.5, 0)
		put(t, c, "gunicorn", "gauge_livesum", pid, gaugeKey, 1, 0)
		put(t, c, "gunicorn", "gauge_all", pid, allKey, 7, 0)
		put(t, c, "gunicorn", "histogram", pid, bucket05, 1, 0)
		put(t, c, "gunicorn", "histogram", pid, bucketIn, 2, 0)
		put(t, c, "gunicorn", "histogram", pid, latSum, 1.25, 0)
	}
	s := newStore(t, srv, 0, Options{})
	snap := mustRead(t, s)
	want := []string{
		`busy{} 3`,
		`lat_bucket{le="+Inf"} 9`,
		`lat_bucket{le="0.5"} 3`,
		`lat_count{} 9`,
		`lat_sum{} 3.75`,
		`mem{pid="101"} 7`,
		`mem{pid="102"} 7`,
		`mem{pid="103"} 7`,
		`req_total{path="/a"} 7.5`,
	}
	if got := samples(snap.Families); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if snap.PIDs != 3 || snap.Keys["counter"] != 3 || snap.Keys["histogram"] != 9 || snap.Keys["gauge"] != 6 {
		t.Errorf("pids %d keys %v", snap.PIDs, snap.Keys)
	}
	if snap.RoundTrips < 2 || snap.Bytes <= 0 {
		t.Errorf("round trips %d bytes %d", snap.RoundTrips, snap.Bytes)
	}
	for r, n := range snap.Dropped {
		if n != 0 {
			t.Errorf("dropped %s: %d", r, n)
		}
	}
	// The second read runs on cached metadata: the same result, fewer bytes.
	snap2 := mustRead(t, s)
	if got := samples(snap2.Families); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("second read:\n%s", strings.Join(got, "\n"))
	}
	if snap2.Bytes >= snap.Bytes {
		t.Errorf("second read took %d bytes, the first %d: metadata read again?", snap2.Bytes, snap.Bytes)
	}
}

// TestReadSkipsAndCounts: every kind of bad entry is left out and counted by its reason;
// the good ones are still served.
func TestReadSkipsAndCounts(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := srv.Client(0)
	ctx := context.Background()
	put(t, c, "gunicorn", "counter", "7", reqKey, 4, 0)
	// bad_value: not a number, and a missing timestamp.
	m := put(t, c, "gunicorn", "counter", "8", reqKey, 1, 0)
	c.HSet(ctx, m, "value", "four")
	m = put(t, c, "gunicorn", "counter", "9", reqKey, 1, 0)
	c.HDel(ctx, m, "timestamp")
	// bad_key: original_key is not prometheus_client's JSON.
	m = put(t, c, "gunicorn", "counter", "10", reqKey, 1, 0)
	c.HSet(ctx, strings.Replace(m, ":metric:", ":meta:", 1), "original_key", "{not json")
	// no_metadata
	m = put(t, c, "gunicorn", "counter", "11", reqKey, 1, 0)
	c.Del(ctx, strings.Replace(m, ":metric:", ":meta:", 1))
	// wrong_type: a string where a hash belongs.
	c.Set(ctx, "gunicorn:counter:12:metric:abc", "1", 0)
	// bad_name: no pid, an unknown type.
	c.HSet(ctx, "gunicorn:counter:x:metric:abc", "value", "1", "timestamp", "0")
	c.HSet(ctx, "gunicorn:timer:13:metric:abc", "value", "1", "timestamp", "0")
	// foreign_prefix: another application under a longer prefix.
	put(t, c, "gunicorn:app2", "counter", "14", reqKey, 100, 0)
	// no_mode: the writer's bare gauge key (metadata without a mode).
	m = put(t, c, "gunicorn", "gauge", "15", gaugeKey, 0, 0)
	c.HDel(ctx, strings.Replace(m, ":metric:", ":meta:", 1), "multiprocess_mode", "typ")
	// bad_sample: a counter entry that is not name_total; type_conflict: req in a gauge.
	put(t, c, "gunicorn", "counter", "16", origKey("req", "req_created", nil, "Requests."), 1, 0)
	put(t, c, "gunicorn", "gauge_all", "17", origKey("req", "req", nil, "Requests."), 1, 0)

	s := newStore(t, srv, 0, Options{})
	for range 2 {
		snap := mustRead(t, s)
		if v := value(t, snap.Families, `req_total{path="/a"}`); v != 4 {
			t.Errorf("req_total = %v, want 4", v)
		}
		want := map[string]int{
			ReasonBadValue: 2, ReasonBadKey: 1, ReasonNoMetadata: 1, ReasonWrongType: 1,
			ReasonBadName: 2, ReasonForeignPrefix: 1, ReasonNoMode: 1,
			multiproc.EntryReasonBadSample: 1, multiproc.EntryReasonTypeClash: 1,
		}
		for r, n := range want {
			if snap.Dropped[r] != n {
				t.Errorf("dropped[%s] = %d, want %d (all: %v)", r, snap.Dropped[r], n, snap.Dropped)
			}
		}
	}
}

// TestPrefixes: the prefix is matched exactly, with glob characters and colons in it; a
// trailing colon is dropped as the writer drops it.
func TestPrefixes(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := srv.Client(0)
	put(t, c, "gunicorn", "counter", "1", reqKey, 1, 0)
	put(t, c, "gunicorn:app2", "counter", "1", reqKey, 10, 0)
	put(t, c, "g[u]*n?", "counter", "1", reqKey, 100, 0)
	put(t, c, "gxun", "counter", "1", reqKey, 1000, 0)
	for prefix, want := range map[string]float64{"gunicorn": 1, "gunicorn:": 1, "gunicorn:app2": 10, "g[u]*n?": 100, "gxun": 1000} {
		s := newStore(t, srv, 0, Options{Prefix: prefix})
		snap := mustRead(t, s)
		if v := value(t, snap.Families, `req_total{path="/a"}`); v != want {
			t.Errorf("prefix %q: %v, want %v", prefix, v, want)
		}
	}
}

// TestVanishedCountersKept: a counter whose keys expire keeps counting; a worker that writes
// again continues from its own value (not counted twice); a lower value (a new process with
// the same pid) adds to the kept one; gauges vanish.
func TestVanishedCountersKept(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := srv.Client(0)
	ctx := context.Background()
	put(t, c, "gunicorn", "counter", "1", reqKey, 10, 0)
	put(t, c, "gunicorn", "counter", "2", reqKey, 5, 0)
	put(t, c, "gunicorn", "histogram", "2", bucket05, 3, 0)
	put(t, c, "gunicorn", "histogram", "2", latSum, 0.75, 0)
	put(t, c, "gunicorn", "gauge_all", "2", allKey, 9, 0)
	now := time.Unix(1700000000, 0)
	clock := func() time.Time { return now }
	keep := newStore(t, srv, 0, Options{Now: clock, ResumeWindow: time.Hour})
	drop := newStore(t, srv, 0, Options{DropVanished: true})
	check := func(s *Store, sample string, want float64) {
		t.Helper()
		snap := mustRead(t, s)
		if v := value(t, snap.Families, sample); v != want {
			t.Errorf("%s = %v, want %v", sample, v, want)
		}
	}
	check(keep, `req_total{path="/a"}`, 15)
	check(drop, `req_total{path="/a"}`, 15)

	// Worker 2's keys expire.
	keys, _ := c.Keys(ctx, "gunicorn:*:2:*").Result()
	c.Del(ctx, keys...)
	snap := mustRead(t, keep)
	if v := value(t, snap.Families, `req_total{path="/a"}`); v != 15 {
		t.Errorf("kept: req_total = %v, want 15", v)
	}
	if v := value(t, snap.Families, `lat_bucket{le="0.5"}`); v != 3 {
		t.Errorf("kept: bucket = %v, want 3", v)
	}
	if has(snap.Families, `mem{pid="2"}`) {
		t.Error("a vanished gauge is still served")
	}
	if snap.Held != 3 || snap.Folded != 0 {
		t.Errorf("held %d folded %d, want 3 0", snap.Held, snap.Folded)
	}
	check(drop, `req_total{path="/a"}`, 10)

	// Worker 2 writes again, its whole value as a worker does: 5+2.
	put(t, c, "gunicorn", "counter", "2", reqKey, 7, 0)
	check(keep, `req_total{path="/a"}`, 17)
	// Worker 1's pid comes back as a new process that starts from 0 (its keys were deleted).
	keys, _ = c.Keys(ctx, "gunicorn:*:1:*").Result()
	c.Del(ctx, keys...)
	put(t, c, "gunicorn", "counter", "1", reqKey, 1, 0)
	check(keep, `req_total{path="/a"}`, 18) // 10 kept + 1 + 7

	// Past the resume window the held histogram values are folded: still counted.
	now = now.Add(2 * time.Hour)
	snap = mustRead(t, keep)
	if v := value(t, snap.Families, `lat_bucket{le="0.5"}`); v != 3 {
		t.Errorf("folded: bucket = %v, want 3", v)
	}
	if v := value(t, snap.Families, `lat_sum{}`); v != 0.75 {
		t.Errorf("folded: sum = %v, want 0.75", v)
	}
	if snap.Held != 0 || snap.Folded != 3 {
		t.Errorf("held %d folded %d, want 0 3", snap.Held, snap.Folded)
	}
	check(keep, `req_total{path="/a"}`, 18)
}

// TestCounterFallsFolded: a counter value lower than at the previous read (keys deleted
// and written afresh between two reads) keeps the old value, and the _sum of that
// histogram series goes with it.
func TestCounterFallsFolded(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := srv.Client(0)
	put(t, c, "gunicorn", "counter", "1", reqKey, 10, 0)
	put(t, c, "gunicorn", "histogram", "1", bucket05, 4, 0)
	put(t, c, "gunicorn", "histogram", "1", latSum, 2, 0)
	s := newStore(t, srv, 0, Options{})
	mustRead(t, s)
	put(t, c, "gunicorn", "counter", "1", reqKey, 3, 0)
	put(t, c, "gunicorn", "histogram", "1", bucket05, 1, 0)
	put(t, c, "gunicorn", "histogram", "1", latSum, 0.5, 0)
	snap := mustRead(t, s)
	if v := value(t, snap.Families, `req_total{path="/a"}`); v != 13 {
		t.Errorf("req_total = %v, want 13", v)
	}
	if v := value(t, snap.Families, `lat_bucket{le="0.5"}`); v != 5 {
		t.Errorf("bucket = %v, want 5", v)
	}
	if v := value(t, snap.Families, `lat_sum{}`); v != 2.5 {
		t.Errorf("sum = %v, want 2.5", v)
	}
	// A _sum that falls on its own (negative observations) is not a reset.
	put(t, c, "gunicorn", "histogram", "1", latSum, 0.25, 0)
	snap = mustRead(t, s)
	if v := value(t, snap.Families, `lat_sum{}`); v != 2.25 {
		t.Errorf("sum = %v, want 2.25", v)
	}
}

// TestLimits: more keys or bytes than allowed fail the read with reason too_large.
func TestLimits(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := srv.Client(0)
	for _, pid := range []string{"1", "2", "3", "4", "5"} {
		put(t, c, "gunicorn", "counter", pid, reqKey, 1, 0)
	}
	ctx := context.Background()
	if _, err := newStore(t, srv, 0, Options{MaxKeys: 5}).Read(ctx); err != nil {
		t.Fatalf("5 keys, limit 5: %v", err)
	}
	_, err := newStore(t, srv, 0, Options{MaxKeys: 4}).Read(ctx)
	if fetch.ReasonOf(err) != fetch.ReasonTooLarge {
		t.Fatalf("5 keys, limit 4: %v (%s)", err, fetch.ReasonOf(err))
	}
	// One huge value: read no further than the limit.
	m := put(t, c, "gunicorn", "counter", "6", reqKey, 1, 0)
	c.HSet(ctx, m, "value", strings.Repeat("9", 8<<20))
	s := newStore(t, srv, 0, Options{MaxBytes: 1 << 20})
	_, err = s.Read(ctx)
	if fetch.ReasonOf(err) != fetch.ReasonTooLarge {
		t.Fatalf("8 MiB value, limit 1 MiB: %v (%s)", err, fetch.ReasonOf(err))
	}
	if used := s.budget.used.Load(); used > 1<<20+64<<10 {
		t.Errorf("read %d bytes past a 1 MiB limit", used)
	}
	c.HSet(ctx, m, "value", "1.0")
	if _, err := s.Read(ctx); err != nil {
		t.Fatalf("after the value shrank: %v", err)
	}
}

// TestConnections: TCP and unix socket URLs with a database number, password from the URL
// or apart; a wrong password is reason permission, a stopped server reason connect, and the
// store reads again once the server is back.
func TestConnections(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	put(t, srv.Client(3), "gunicorn", "counter", "1", reqKey, 42, 0)
	ctx := context.Background()
	urls := []Target{
		{URL: srv.URL(3), Password: redistest.Password},
		{URL: strings.Replace(srv.URL(3), "redis://", "redis://default@", 1), Password: redistest.Password},
		{URL: srv.UnixURL(3), Password: redistest.Password},
	}
	for _, tg := range urls {
		s, err := New(tg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(s.Address(), redistest.Password) {
			t.Errorf("address %q holds the password", s.Address())
		}
		snap, err := s.Read(ctx)
		if err != nil {
			t.Fatalf("%s: %v", s.Address(), err)
		}
		if v := value(t, snap.Families, `req_total{path="/a"}`); v != 42 {
			t.Errorf("%s: %v", s.Address(), v)
		}
		s.Close()
	}
	bad, _ := New(Target{URL: srv.URL(3), Password: "wrong-password-value"}, Options{})
	defer bad.Close()
	_, err := bad.Read(ctx)
	if fetch.ReasonOf(err) != fetch.ReasonPermission || strings.Contains(err.Error(), "wrong-password-value") {
		t.Errorf("wrong password: %v (%s)", err, fetch.ReasonOf(err))
	}
	s, _ := New(Target{URL: srv.URL(3), Password: redistest.Password, Timeout: 2 * time.Second}, Options{})
	defer s.Close()
	if _, err := s.Read(ctx); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	_, err = s.Read(ctx)
	if fetch.ReasonOf(err) != fetch.ReasonConnect {
		t.Errorf("stopped server: %v (%s)", err, fetch.ReasonOf(err))
	}
	srv.Restart()
	snap, err := s.Read(ctx)
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	// The restarted server is empty: the counter is kept.
	if v := value(t, snap.Families, `req_total{path="/a"}`); v != 42 || snap.Held != 1 {
		t.Errorf("after restart: %v, held %d", v, snap.Held)
	}
}

func TestTargetErrors(t *testing.T) {
	for _, u := range []string{
		"http://h:1/0", "redis://", "redis://h:1/x", "redis://h:1/0/1", "redis://h:99999/0",
		"redis://h:1/0?pool_size=3", "unix://host/path", "unix:///p?timeout=1", "unix:///p?db=-1",
		"redis://u:s3cret@h:bad/0", "redis://:s3cret@h/0", "redis://u:s3cret@h/0", "unix://u:s3cret@/p",
		"redis://h/0?password=s3cret", "unix:///p?password=s3cret",
	} {
		_, err := New(Target{URL: u}, Options{})
		if err == nil {
			t.Errorf("%s: no error", u)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: error shows the password: %v", u, err)
		}
	}
	for in, want := range map[string]string{
		"rediss://user@h:1/2":     "rediss://h:1/2",
		"unix:///run/r.sock?db=3": "unix:///run/r.sock?db=3",
		"redis://u:pw@h:bad/0":    "redis://xxxxx@h:bad/0",
		"redis://u@h/0":           "redis://h/0",
		"unix://user@/run/r.sock": "unix:///run/r.sock",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestTLS: rediss:// with the CA given; a server certificate of an unknown CA is reason
// connect.
func TestTLS(t *testing.T) {
	ca := testcert.New(t, "test CA", nil)
	leaf := testcert.New(t, "redis", ca)
	dir := t.TempDir()
	cert, key := leaf.Write(t, dir, "server")
	caFile, _ := ca.Write(t, dir, "ca")
	srv := redistest.Start(t, redistest.Options{TLSCert: cert, TLSKey: key, TLSCA: caFile})
	put(t, srv.Client(0), "gunicorn", "counter", "1", reqKey, 5, 0)
	ctx := context.Background()
	good, err := tlsconfig.Options{CAFile: caFile}.Config()
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Target{URL: srv.URL(0), Password: redistest.Password, TLS: good}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.HasPrefix(s.Address(), "rediss://") {
		t.Fatalf("address %s", s.Address())
	}
	snap, err := s.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v := value(t, snap.Families, `req_total{path="/a"}`); v != 5 {
		t.Errorf("over TLS: %v", v)
	}
	other := testcert.New(t, "other CA", nil)
	bad := &tls.Config{RootCAs: other.Pool(), MinVersion: tls.VersionTLS12}
	s2, _ := New(Target{URL: srv.URL(0), Password: redistest.Password, TLS: bad}, Options{})
	defer s2.Close()
	_, err = s2.Read(ctx)
	if fetch.ReasonOf(err) != fetch.ReasonConnect {
		t.Errorf("unknown CA: %v (%s)", err, fetch.ReasonOf(err))
	}
}

// TestDeadline: a server that accepts and never answers holds a read no longer than its
// context allows (reason timeout); a read waiting behind it gives up at its own deadline.
func TestDeadline(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	s, err := New(Target{URL: "redis://" + l.Addr().String() + "/0", Timeout: time.Minute}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = s.Read(ctx)
	if fetch.ReasonOf(err) != fetch.ReasonTimeout {
		t.Errorf("silent server: %v (%s)", err, fetch.ReasonOf(err))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the read took %v past a 300ms deadline", d)
	}
}

// TestACLUser: an ACL user allowed only what a read sends (SCAN, HMGET, and SELECT for a
// database other than 0) on the prefix's keys reads the store; one without HMGET is reason
// permission.
func TestACLUser(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := srv.Client(2)
	put(t, c, "gunicorn", "counter", "1", reqKey, 3, 0)
	ctx := context.Background()
	if err := c.Do(ctx, "ACL", "SETUSER", "exporter", "on", ">exporter-pw", "resetkeys", "~gunicorn:*", "resetchannels", "-@all", "+scan", "+hmget", "+select").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, "ACL", "SETUSER", "nohmget", "on", ">exporter-pw", "~gunicorn:*", "-@all", "+scan", "+select").Err(); err != nil {
		t.Fatal(err)
	}
	u := strings.Replace(srv.URL(2), "redis://", "redis://exporter@", 1)
	s, err := New(Target{URL: u, Password: "exporter-pw"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	snap, err := s.Read(ctx)
	if err != nil {
		t.Fatalf("ACL user: %v", err)
	}
	if v := value(t, snap.Families, `req_total{path="/a"}`); v != 3 {
		t.Errorf("ACL user: %v", v)
	}
	if s.Address() != srv.URL(2) {
		t.Errorf("address %s: the user name should not be shown", s.Address())
	}
	s2, _ := New(Target{URL: strings.Replace(u, "exporter@", "nohmget@", 1), Password: "exporter-pw"}, Options{})
	defer s2.Close()
	if _, err := s2.Read(ctx); fetch.ReasonOf(err) != fetch.ReasonPermission {
		t.Errorf("user without HMGET: %v (%s)", err, fetch.ReasonOf(err))
	}
}
