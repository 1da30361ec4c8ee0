package gunicorn

import (
	"context"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"
)

// truncatedDB is a file whose last entry starts on the first page and whose value lies three
// pages further: cut to one page after it is mapped, the header and every key length still
// read, but the last value faults (SIGBUS) while the earlier, unknown keys are being resolved.
func truncatedDB(t *testing.T, dir, name string) (path string, cut func(string)) {
	t.Helper()
	page := os.Getpagesize()
	big := `["c", "c_total", {"x": "` + strings.Repeat("y", 3*page) + `"}, "help"]`
	data := encodeDB(GenValue, 4*page,
		testEntry{key: counterKey("a", ""), v: 1},
		testEntry{key: counterKey("b", ""), v: 2},
		testEntry{key: big, v: 3})
	writeFile(t, dir, name, data)
	path = filepath.Join(dir, name)
	return path, func(p string) {
		if p != path {
			return
		}
		if err := os.Truncate(p, int64(page)); err != nil {
			t.Error(err)
		}
	}
}

// TestMultiprocFaultReleasesKeys: a mapped file truncated while its unknown keys are being
// resolved is a recovered fault counted as read, and leaves keysMu free, so the read and the
// next ones complete.
func TestMultiprocFaultReleasesKeys(t *testing.T) {
	dir := t.TempDir()
	path, cut := truncatedDB(t, dir, "counter_1.db")
	r := NewMultiprocReader(MultiprocOptions{})
	defer r.Close()
	r.mappedHook = cut
	// readFile alone first: with keysMu left held, a whole Read would block in forget.
	done := make(chan *fileResult)
	go func() {
		old := debug.SetPanicOnFault(true)
		defer debug.SetPanicOnFault(old)
		var total atomic.Int64
		var tooLarge atomic.Bool
		done <- r.readFile(path, FileInfo{Name: "counter_1.db", mayMap: true}, nil, &total, &tooLarge)
	}()
	res := <-done
	if res.problem == nil || res.problem.Reason != FileReasonRead {
		t.Fatalf("problem %+v, want reason %s", res.problem, FileReasonRead)
	}
	if !r.keysMu.TryLock() {
		t.Fatal("keysMu still held after the recovered fault")
	}
	r.keysMu.Unlock()

	// Through Read: the file is reported, the other one merged, and the next Read completes.
	_, cut = truncatedDB(t, dir, "counter_1.db")
	writeFile(t, dir, "counter_2.db", encodeDB(GenValue, 0, testEntry{key: counterKey("a", ""), v: 10}))
	r.mappedHook = cut
	snap, err := r.Read(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Problems) != 1 || snap.Problems[0].Name != "counter_1.db" || snap.Problems[0].Reason != FileReasonRead {
		t.Fatalf("problems %+v, want counter_1.db: read", snap.Problems)
	}
	if a := famByName(snap, "a"); a == nil || len(a.Series) != 1 || a.Series[0].Value != 10 {
		t.Fatalf("a: %+v, want 10 from counter_2.db", a)
	}
	if !r.keysMu.TryLock() {
		t.Fatal("keysMu held after Read")
	}
	r.keysMu.Unlock()
	r.mappedHook = nil
	truncatedDB(t, dir, "counter_1.db")
	snap, err = r.Read(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Problems) != 0 {
		t.Fatalf("problems %+v after the file was rewritten", snap.Problems)
	}
	if a := famByName(snap, "a"); a == nil || a.Series[0].Value != 11 {
		t.Fatalf("a: %+v, want 11", a)
	}
	if c := famByName(snap, "c"); c == nil || c.Series[0].Value != 3 {
		t.Fatalf("c: %+v, want 3", c)
	}
}
