package multiproc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

func writeFile(t testing.TB, dir, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func counterKey(metric string, labels string) string {
	return `["` + metric + `", "` + metric + `_total", {` + labels + `}, "help of ` + metric + `"]`
}

func famByName(s *Snapshot, name string) *Family {
	for i := range s.Families {
		if s.Families[i].Name == name {
			return &s.Families[i]
		}
	}
	return nil
}

// TestMultiprocReadRobust: bad files are skipped with a reason and everything else is merged.
func TestMultiprocReadRobust(t *testing.T) {
	dir := t.TempDir()
	good := encodeDB(GenValue, 4096, testEntry{key: counterKey("req", `"code": "200"`), v: 3})
	writeFile(t, dir, "counter_1.db", good)
	writeFile(t, dir, "counter_2.db", encodeDB(GenTimestamp, 0, testEntry{key: counterKey("req", `"code": "200"`), v: 4, ts: 1}))
	writeFile(t, dir, "counter_3.db", nil)                                   // zero-length
	writeFile(t, dir, "counter_4.db", good[:20])                             // truncated
	writeFile(t, dir, "counter_5.db", []byte("SQLite format 3\x00garbage!")) // SQLite
	writeFile(t, dir, "counter_6.db", encodeDB(GenValue, 0,
		testEntry{key: "not json", v: 100},
		testEntry{key: counterKey("req", `"code": "500"`), v: 1}))
	writeFile(t, dir, ".counter_7.db", good)
	writeFile(t, dir, "notes.txt", []byte("x"))
	writeFile(t, dir, "weird_1.db", good)
	if err := os.Mkdir(filepath.Join(dir, "counter_8.db"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "counter_9.db"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := NewReader(Options{})
	snap, err := r.Read(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range snap.Problems {
		got[p.Name] = p.Reason
	}
	want := map[string]string{
		"counter_3.db": FileReasonShort, "counter_4.db": FileReasonTruncated, "counter_5.db": FileReasonCorrupt,
		".counter_7.db": FileReasonIgnored, "notes.txt": FileReasonIgnored, "weird_1.db": FileReasonBadName,
		"counter_8.db": FileReasonNotRegular, "counter_9.db": FileReasonNotRegular,
	}
	if len(got) != len(want) {
		t.Errorf("problems %v, want %v", got, want)
	}
	for n, r := range want {
		if got[n] != r {
			t.Errorf("%s: reason %q, want %q", n, got[n], r)
		}
	}
	if snap.Dropped[EntryReasonBadKey] != 1 {
		t.Errorf("dropped %v, want 1 bad_key", snap.Dropped)
	}
	f := famByName(snap, "req")
	if f == nil || len(f.Series) != 2 {
		t.Fatalf("req: %+v", f)
	}
	for _, s := range f.Series {
		want := map[string]float64{"200": 7, "500": 1}[s.Labels[0].Value]
		if s.Value != want {
			t.Errorf("req%v = %v, want %v", s.Labels, s.Value, want)
		}
	}
	// The second read uses the cached keys and gives the same result.
	snap2, err := r.Read(context.Background(), dir)
	if err != nil || len(snap2.Families) != 1 || snap2.Dropped[EntryReasonBadKey] != 1 {
		t.Fatalf("second read: %+v %v", snap2, err)
	}
}

func TestMultiprocReadMissingAndTooLarge(t *testing.T) {
	r := NewReader(Options{MaxBytes: 100})
	_, err := r.Read(context.Background(), filepath.Join(t.TempDir(), "nope"))
	if fetch.ReasonOf(err) != fetch.ReasonNotFound {
		t.Fatalf("missing dir: %v (reason %s)", err, fetch.ReasonOf(err))
	}
	dir := t.TempDir()
	writeFile(t, dir, "x", nil)
	if _, err := r.Read(context.Background(), filepath.Join(dir, "x")); fetch.ReasonOf(err) != fetch.ReasonNotFound {
		t.Fatalf("file as dir: %v", err)
	}
	for i := 0; i < 3; i++ {
		writeFile(t, dir, "counter_"+strconv.Itoa(i)+".db", encodeDB(GenValue, 0, testEntry{key: counterKey("req", ""), v: 1}))
	}
	_, err = r.Read(context.Background(), dir)
	if fetch.ReasonOf(err) != fetch.ReasonTooLarge {
		t.Fatalf("over the limit: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := NewReader(Options{}).Read(ctx, dir); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

// TestMultiprocLiveness: files of pids without /proc/<pid> are dead; live gauges of dead
// pids are dropped only when asked and when some writer is alive.
func TestMultiprocLiveness(t *testing.T) {
	dir, proc := t.TempDir(), t.TempDir()
	if err := os.Mkdir(filepath.Join(proc, "100"), 0o755); err != nil {
		t.Fatal(err)
	}
	gk := `["g", "g", {}, "a gauge"]`
	for _, pid := range []string{"100", "200"} {
		writeFile(t, dir, "gauge_livesum_"+pid+".db", encodeDB(GenValue, 0, testEntry{key: gk, v: 5}))
		writeFile(t, dir, "counter_"+pid+".db", encodeDB(GenValue, 0, testEntry{key: counterKey("c", ""), v: 1}))
	}
	writeFile(t, dir, "counter_worker_1.db", encodeDB(GenValue, 0, testEntry{key: counterKey("c", ""), v: 1}))
	for _, tc := range []struct {
		drop bool
		proc string
		want float64
		dead int
	}{{false, proc, 10, 2}, {true, proc, 5, 2}, {true, t.TempDir(), 10, 4}, {true, "", 10, 0}} {
		snap, err := NewReader(Options{ProcRoot: tc.proc, DropDeadLiveGauges: tc.drop}).Read(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		if g := famByName(snap, "g"); g.Series[0].Value != tc.want {
			t.Errorf("%+v: g = %v, want %v", tc, g.Series[0].Value, tc.want)
		}
		dead := 0
		for _, ts := range snap.Types {
			dead += ts.DeadFiles
		}
		if dead != tc.dead {
			t.Errorf("%+v: %d dead files, want %d", tc, dead, tc.dead)
		}
		if want := map[bool]int{true: 1}[tc.drop && tc.want == 5]; snap.DroppedDeadLive != want {
			t.Errorf("%+v: %d dead live gauge files left out, want %d", tc, snap.DroppedDeadLive, want)
		}
		if c := famByName(snap, "c"); c.Series[0].Value != 3 {
			t.Errorf("counter %v, want 3", c.Series[0].Value)
		}
	}
}
