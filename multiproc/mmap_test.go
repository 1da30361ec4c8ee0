package multiproc

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func readValue(t *testing.T, r *Reader, dir, fam string) []Series {
	t.Helper()
	snap, err := r.Read(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	f := famByName(snap, fam)
	if f == nil {
		return nil
	}
	return f.Series
}

// TestMultiprocMappedFiles: files kept mapped between reads follow in-place value updates,
// appended entries, growth past the mapped size, replacement by another file and deletion,
// exactly as a fresh pread of every file does.
func TestMultiprocMappedFiles(t *testing.T) {
	for _, noMmap := range []bool{false, true} {
		dir := t.TempDir()
		path := filepath.Join(dir, "counter_1.db")
		k1, k2 := counterKey("a", ""), counterKey("b", "")
		writeFile(t, dir, "counter_1.db", encodeDB(GenValue, 4096, testEntry{key: k1, v: 1}))
		r := NewReader(Options{NoMmap: noMmap})
		check := func(what string, fam string, want float64) {
			t.Helper()
			s := readValue(t, r, dir, fam)
			if len(s) != 1 || s[0].Value != want {
				t.Fatalf("noMmap=%v %s: %s = %+v, want %v", noMmap, what, fam, s, want)
			}
		}
		check("first read", "a", 1)
		check("second read", "a", 1)
		// In place, as the client writes: same inode, same size.
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(encodeDB(GenValue, 0, testEntry{key: k1, v: 5}, testEntry{key: k2, v: 7}), 0); err != nil {
			t.Fatal(err)
		}
		f.Close()
		check("value updated in place", "a", 5)
		check("entry appended in place", "b", 7)
		// Grown past the mapped size.
		f, _ = os.OpenFile(path, os.O_WRONLY, 0)
		if _, err := f.WriteAt(encodeDB(GenValue, 8192, testEntry{key: k1, v: 9}, testEntry{key: k2, v: 11}), 0); err != nil {
			t.Fatal(err)
		}
		f.Close()
		check("file grown", "b", 11)
		// Replaced by another file (new inode) with other keys in another order.
		tmp := filepath.Join(t.TempDir(), "x")
		if err := os.WriteFile(tmp, encodeDB(GenTimestamp, 8192, testEntry{key: k2, v: 2, ts: 1}, testEntry{key: k1, v: 3, ts: 1}), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
		check("file replaced", "a", 3)
		check("file replaced", "b", 2)
		if !noMmap && r.mapCount != 1 {
			t.Fatalf("%d files mapped, want 1", r.mapCount)
		}
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if s := readValue(t, r, dir, "a"); s != nil {
			t.Fatalf("deleted file still read: %+v", s)
		}
		if r.mapCount != 0 {
			t.Fatalf("%d files still mapped after deletion", r.mapCount)
		}
		writeFile(t, dir, "counter_2.db", encodeDB(GenValue, 4096, testEntry{key: k1, v: 1}))
		check("new file", "a", 1)
		r.Close()
		if r.mapCount != 0 {
			t.Fatalf("%d files mapped after Close", r.mapCount)
		}
	}
}

// TestMultiprocMappedRewrittenInPlace: a mapped file rewritten in place with other keys but
// the same size and used field is parsed afresh, not read with the layout of its old keys.
func TestMultiprocMappedRewrittenInPlace(t *testing.T) {
	for _, tc := range []struct {
		name       string
		first, end string // the new keys of the first and last entries
	}{
		{"first key changed", "x", "b"},
		{"last key changed", "a", "y"},
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, "counter_1.db")
		old := encodeDB(GenValue, 4096, testEntry{key: counterKey("a", ""), v: 1}, testEntry{key: counterKey("m", ""), v: 2},
			testEntry{key: counterKey("b", ""), v: 3})
		writeFile(t, dir, "counter_1.db", old)
		r := NewReader(Options{})
		if s := readValue(t, r, dir, "a"); len(s) != 1 || s[0].Value != 1 {
			t.Fatalf("%s: first read: a = %+v", tc.name, s)
		}
		if r.mapCount != 1 {
			t.Fatalf("%s: %d files mapped, want 1", tc.name, r.mapCount)
		}
		// Same inode, same size, same used field: keys of the same lengths.
		now := encodeDB(GenValue, 4096, testEntry{key: counterKey(tc.first, ""), v: 10}, testEntry{key: counterKey("m", ""), v: 20},
			testEntry{key: counterKey(tc.end, ""), v: 30})
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(now, 0); err != nil {
			t.Fatal(err)
		}
		f.Close()
		snap, err := r.Read(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, fam := range snap.Families {
			got[fam.Name] = fam.Series[0].Value
		}
		want := map[string]float64{tc.first: 10, "m": 20, tc.end: 30}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: after the rewrite %v, want %v", tc.name, got, want)
		}
		r.Close()
	}
}
