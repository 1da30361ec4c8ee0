package multiproc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
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
		if p != name {
			return
		}
		if err := os.Truncate(path, int64(page)); err != nil {
			t.Error(err)
		}
	}
}

// TestMultiprocFaultReleasesKeys: a mapped file truncated while its unknown keys are being
// resolved is a recovered fault counted as read, and leaves keysMu free, so the read and the
// next ones complete.
func TestMultiprocFaultReleasesKeys(t *testing.T) {
	dir := t.TempDir()
	_, cut := truncatedDB(t, dir, "counter_1.db")
	r := NewReader(Options{})
	defer r.Close()
	r.mappedHook = cut
	// readFile alone first: with keysMu left held, a whole Read would block in forget.
	dfd, dst := openDir(t, dir)
	done := make(chan *fileResult)
	go func() {
		old := debug.SetPanicOnFault(true)
		defer debug.SetPanicOnFault(old)
		var bud budget
		done <- r.readFile(context.Background(), dfd, &dst, FileInfo{Name: "counter_1.db", mayMap: true}, nil, &bud)
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

// TestMultiprocReadQueuedGivesUp: a Read waiting behind a stuck one returns a timeout when
// its context ends, instead of blocking until the stuck one finishes; once that one is
// released, reads go on.
func TestMultiprocReadQueuedGivesUp(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "counter_1.db", encodeDB(GenValue, 4096, testEntry{key: counterKey("a", ""), v: 1}))
	r := NewReader(Options{})
	defer r.Close()
	entered, release := make(chan struct{}), make(chan struct{})
	r.mappedHook = func(string) {
		close(entered)
		<-release
	}
	first := make(chan error, 1)
	go func() {
		_, err := r.Read(context.Background(), dir)
		first <- err
	}()
	<-entered // the first Read is stuck inside, holding the reader
	ctx, cancel := context.WithCancel(context.Background())
	second := make(chan error, 1)
	go func() {
		_, err := r.Read(ctx, dir)
		second <- err
	}()
	cancel()
	select {
	case err := <-second:
		if fetch.ReasonOf(err) != fetch.ReasonTimeout || !errors.Is(err, context.Canceled) {
			t.Fatalf("queued read: %v (reason %s), want timeout", err, fetch.ReasonOf(err))
		}
	case <-time.After(time.Minute): // a hang guard, not a timing assertion
		close(release)
		t.Fatal("queued read still blocked behind the stuck one after its context ended")
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	r.mappedHook = nil
	if s := readValue(t, r, dir, "a"); len(s) != 1 || s[0].Value != 1 {
		t.Fatalf("a: %+v", s)
	}
	if len(r.sem) != 0 {
		t.Fatal("reader still held after every read returned")
	}
}
