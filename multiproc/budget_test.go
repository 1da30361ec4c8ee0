package multiproc

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"testing"

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
