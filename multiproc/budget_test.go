package multiproc

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// sparseDB makes a sparse file of size bytes whose header says used bytes are in use.
func sparseDB(t *testing.T, dir, name string, size int64, used uint32) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var hdr [8]byte
	binary.LittleEndian.PutUint32(hdr[:], used)
	if _, err := f.Write(hdr[:]); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

// TestMultiprocBudgetBeforeRead: a file whose used part is over --multiproc.max-bytes fails
// the read with too_large before any buffer is sized for it (files over 1 GiB are read with
// pread) or the file is mapped.
func TestMultiprocBudgetBeforeRead(t *testing.T) {
	const limit = 1 << 20
	for _, tc := range []struct {
		name  string
		size  int64
		used  uint32
		noMap bool
	}{
		{"pread, over 1 GiB", 3 << 29, 3<<29 - 4096, false},
		{"pread, NoMmap", 1 << 29, 1<<29 - 4096, true},
		{"mappable", 1 << 29, 1<<29 - 4096, false},
	} {
		dir := t.TempDir()
		sparseDB(t, dir, "counter_1.db", tc.size, tc.used)
		r := NewReader(Options{MaxBytes: limit, NoMmap: tc.noMap})
		mapped := 0
		r.mappedHook = func(string) { mapped++ }
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := r.Read(context.Background(), dir)
		runtime.ReadMemStats(&after)
		r.Close()
		if fetch.ReasonOf(err) != fetch.ReasonTooLarge {
			t.Errorf("%s: %v (reason %s), want too_large", tc.name, err, fetch.ReasonOf(err))
		}
		if d := after.TotalAlloc - before.TotalAlloc; d > limit {
			t.Errorf("%s: %d bytes allocated reading a file over the %d byte limit", tc.name, d, limit)
		}
		if mapped != 0 {
			t.Errorf("%s: mapped %d times before the limit was checked", tc.name, mapped)
		}
	}
	// Under the limit, the same files (used parts of zeros: corrupt) are read, not too_large.
	dir := t.TempDir()
	sparseDB(t, dir, "counter_1.db", 1<<16, 1<<12)
	snap, err := NewReader(Options{MaxBytes: limit}).Read(context.Background(), dir)
	if err != nil || len(snap.Problems) != 1 || snap.Problems[0].Reason != FileReasonCorrupt {
		t.Fatalf("under the limit: %+v, %v", snap, err)
	}
}

// TestMultiprocAbandonedRead: a read whose context ends while it parses a file of many new
// keys stops within a bounded amount of work (the loops look at the context every 4096
// entries), returns a timeout, leaves no goroutine behind, and reads abandoned again and again
// never hold more keys than the series limit.
func TestMultiprocAbandonedRead(t *testing.T) {
	dir := t.TempDir()
	const n = 60000
	var es []testEntry
	for i := 0; i < n; i++ {
		es = append(es, testEntry{key: fmt.Sprintf(`["m", "m_total", {"a": "%d"}, "h"]`, i), v: 1})
	}
	writeFile(t, dir, "counter_1.db", encodeDB(GenValue, 0, es...))
	r := NewReader(Options{MaxSeries: 20000})
	defer r.Close()
	before := runtime.NumGoroutine()
	keys := func() int {
		r.keysMu.RLock()
		defer r.keysMu.RUnlock()
		return len(r.keys)
	}
	for round := 1; round <= 3; round++ {
		// The context ends when the reader has kept 2000 more keys (from inside the read, so
		// that a busy machine cannot let the read finish first).
		ctx, cancel := context.WithCancel(context.Background())
		r.keyHook = func(n int) {
			if n >= 2000*round {
				cancel()
			}
		}
		_, err := r.Read(ctx, dir)
		cancel()
		if fetch.ReasonOf(err) != fetch.ReasonTimeout {
			t.Fatalf("round %d: %v (reason %s), want timeout", round, err, fetch.ReasonOf(err))
		}
		if k := keys(); k > 2000*round+4*ctxEvery {
			t.Fatalf("round %d: %d keys parsed, the read went on well past its context's end (%d)", round, k, 2000*round)
		}
	}
	r.keyHook = nil
	for i := 0; runtime.NumGoroutine() > before; i++ {
		if i == 500 { // a hang guard, not a timing assertion
			t.Fatalf("%d goroutines after the abandoned reads, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Not abandoned: over the series limit, too_large, and never more keys than it.
	if _, err := r.Read(context.Background(), dir); fetch.ReasonOf(err) != fetch.ReasonTooLarge {
		t.Fatalf("complete read: %v, want too_large", err)
	}
	if k := keys(); k > 20000 {
		t.Fatalf("%d keys held, over the 20000 limit", k)
	}
}

// TestMultiprocEvictWhileMerging: the key cache evicts from the read's workers (a new key over
// the series limit) while the merge resolves earlier files' keys and the store folds: what the
// eviction reads of a key (the last merge that used it, the store's references) must not race
// with them (-race). Every key changes between reads, with room for about one read's keys: the
// second read evicts while it merges (and may fail: the first read's keys were used by the last
// merge, so they stay), the third evicts the first read's keys and is served.
func TestMultiprocEvictWhileMerging(t *testing.T) {
	dir := t.TempDir()
	write := func(gen int) {
		for f := 0; f < 64; f++ {
			var es []testEntry
			for i := 0; i < 20; i++ {
				es = append(es, testEntry{key: counterKey("req", fmt.Sprintf(`"f": "%d", "i": "%d", "g": "%d"`, f, i, gen)), v: 1})
			}
			writeFile(t, dir, fmt.Sprintf("counter_%d.db", f), encodeDB(GenValue, 0, es...))
		}
	}
	r := NewReader(Options{MaxSeries: 64*20 + 20, Workers: 4})
	defer r.Close()
	for gen := range 3 {
		write(gen)
		snap, err := r.Read(context.Background(), dir)
		if gen == 1 && err != nil {
			// The first read's keys stay; whether the keys this read kept before merging them
			// make room depends on how far the workers are ahead of the merge.
			if fetch.ReasonOf(err) != fetch.ReasonTooLarge {
				t.Fatalf("read %d: %v, want too_large or none", gen, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("read %d: %v", gen, err)
		}
		if n := len(snap.Families[0].Series); n != 64*20 {
			t.Fatalf("read %d: %d series", gen, n)
		}
		if len(r.keys) > r.opts.MaxSeries {
			t.Fatalf("read %d: %d keys kept, over %d", gen, len(r.keys), r.opts.MaxSeries)
		}
	}
}
