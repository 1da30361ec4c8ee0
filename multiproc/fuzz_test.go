package multiproc

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
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
		if allocs := testing.AllocsPerRun(1, func() {
			_, _, _ = ParseFile(data)
			Entries(data, used, gen, func(Entry) {})
		}); allocs != 0 {
			t.Fatalf("%v allocations decoding a valid file", allocs)
		}
	})
}

// FuzzMultiprocDir: a directory of two fuzzed files is read and merged without panicking,
// and only the byte limit (too_large) can fail the read; reading it again gives the same
// result. Merging a file with a copy of itself (another process' file of the same type)
// doubles every summed value (counters, histograms, summaries, sum gauges: exactly, when each
// summed value comes from one entry of the file), gives all/liveall gauges a second series
// per series (the copy's pid) and leaves min, max and mostrecent gauges alone.
func FuzzMultiprocDir(f *testing.F) {
	seeds := mpSeeds(f)
	for i := 0; i+1 < len(seeds); i += 7 {
		f.Add(seeds[i], seeds[i+1], uint8(i))
	}
	names := []string{"counter_1.db", "gauge_all_1.db", "gauge_min_1.db", "gauge_livemostrecent_1.db",
		"histogram_1.db", "summary_1.db", "gauge_sum_1.db", "gauge_max_1.db"}
	f.Fuzz(func(t *testing.T, a, b []byte, pick uint8) {
		const maxBytes = 1 << 20
		read := func(r *Reader, dir string) *Snapshot {
			t.Helper()
			snap, err := r.Read(context.Background(), dir)
			if err != nil {
				if fetch.ReasonOf(err) != fetch.ReasonTooLarge {
					t.Fatalf("read failed with reason %s: %v", fetch.ReasonOf(err), err)
				}
				return nil
			}
			return snap
		}
		n := names[int(pick)%len(names)]
		n2 := names[int(pick/8)%len(names)]
		if n2 == n {
			n2 = "counter_2.db"
		}

		// Two files, read twice by one reader (the second read from its caches).
		dir := t.TempDir()
		writeFile(t, dir, n, a)
		writeFile(t, dir, n2, b)
		r := NewReader(Options{MaxBytes: maxBytes})
		defer r.Close()
		first := read(r, dir)
		second := read(r, dir)
		if (first == nil) != (second == nil) {
			t.Fatalf("one read too large, the other not")
		}
		if first != nil {
			compareSnapshots(t, first, second, func(s Series) []Series { return []Series{s} })
		}

		// One file, then the same with a copy of it.
		if len(a) > maxBytes/2 {
			return
		}
		dir = t.TempDir()
		writeFile(t, dir, n, a)
		r1 := NewReader(Options{MaxBytes: maxBytes})
		defer r1.Close()
		single := read(r1, dir)
		exact := summedOnce(r1, a)
		writeFile(t, dir, strings.Replace(n, "_1.db", "_2.db", 1), a)
		doubled := read(r1, dir)
		if single == nil || doubled == nil {
			t.Fatalf("a file of %d bytes over the %d byte limit", len(a), maxBytes)
		}
		if doubled.Entries != 2*single.Entries || doubled.Bytes != 2*single.Bytes || len(doubled.Problems) != 2*len(single.Problems) {
			t.Fatalf("entries %d, bytes %d, problems %d with the copy; %d, %d, %d without",
				doubled.Entries, doubled.Bytes, len(doubled.Problems), single.Entries, single.Bytes, len(single.Problems))
		}
		for reason, c := range single.Dropped {
			if doubled.Dropped[reason] != 2*c {
				t.Fatalf("dropped %v with the copy, %v without", doubled.Dropped, single.Dropped)
			}
		}
		fn, _ := ParseFileName(n)
		compareSnapshots(t, single, doubled, func(s Series) []Series {
			switch {
			case fn.Type != TypeGauge:
				if !exact {
					return nil // values checked for presence only
				}
				d := s
				d.Value, d.Count, d.Sum = 2*s.Value, 2*s.Count, 2*s.Sum
				d.Buckets = nil
				for _, b := range s.Buckets {
					d.Buckets = append(d.Buckets, Bucket{b.UpperBound, 2 * b.Count})
				}
				return []Series{d}
			case fn.Mode == "all" || fn.Mode == "liveall":
				d := s
				d.Labels = nil
				for _, l := range s.Labels {
					if l.Name == "pid" {
						l.Value = "2"
					}
					d.Labels = append(d.Labels, l)
				}
				return []Series{s, d}
			case fn.Mode == "sum" || fn.Mode == "livesum":
				if !exact {
					return nil
				}
				d := s
				d.Value = 2 * s.Value
				return []Series{d}
			}
			return []Series{s} // min, max, mostrecent
		})
	})
}

// summedOnce reports whether every value the last read of r summed from data (a file it
// read) came from a single entry: then merging the file with a copy doubles values exactly.
func summedOnce(r *Reader, data []byte) bool {
	used, gen, err := ParseFile(data)
	if err != nil {
		return true // skipped: nothing summed
	}
	type target struct {
		s    *seriesState
		role uint8
		le   float64
	}
	seen := map[target]bool{}
	once := true
	Entries(data, used, gen, func(e Entry) {
		k := r.keys[string(e.Key)]
		if k == nil || k.merge.series == nil {
			return
		}
		tg := target{k.merge.series, k.merge.role, 0}
		if tg.role == roleBucket {
			tg.le = k.le
		}
		if seen[tg] {
			once = false
		}
		seen[tg] = true
	})
	return once
}

// compareSnapshots checks that b's families are a's, with each series of a turned into the
// series want returns (nil: only that a series with the same labels exists in b).
func compareSnapshots(t *testing.T, a, b *Snapshot, want func(Series) []Series) {
	t.Helper()
	if len(a.Families) != len(b.Families) {
		t.Fatalf("%d families, want %d", len(b.Families), len(a.Families))
	}
	for i, fa := range a.Families {
		fb := b.Families[i]
		if fa.Name != fb.Name || fa.Type != fb.Type || fa.Help != fb.Help || fa.Mode != fb.Mode {
			t.Fatalf("family %d: %s %s %q %s, want %s %s %q %s", i, fb.Name, fb.Type, fb.Help, fb.Mode, fa.Name, fa.Type, fa.Help, fa.Mode)
		}
		got := map[string]Series{}
		for _, s := range fb.Series {
			got[labelsID(s.Labels)] = s
		}
		wanted := 0
		for _, sa := range fa.Series {
			ws := want(sa)
			if ws == nil {
				if _, ok := got[labelsID(sa.Labels)]; !ok {
					t.Fatalf("%s%v missing", fa.Name, sa.Labels)
				}
				wanted++
				continue
			}
			for _, w := range ws {
				wanted++
				g, ok := got[labelsID(w.Labels)]
				if !ok || !sameSeries(g, w) {
					t.Fatalf("%s%v = %+v, want %+v", fa.Name, w.Labels, g, w)
				}
			}
		}
		if wanted != len(fb.Series) {
			t.Fatalf("%s: %d series, want %d", fa.Name, len(fb.Series), wanted)
		}
	}
}

func sameSeries(a, b Series) bool {
	if !sameFloat(a.Value, b.Value) || !sameFloat(a.Count, b.Count) || !sameFloat(a.Sum, b.Sum) ||
		a.HasCount != b.HasCount || a.HasSum != b.HasSum || len(a.Buckets) != len(b.Buckets) {
		return false
	}
	for i := range a.Buckets {
		if !sameFloat(a.Buckets[i].UpperBound, b.Buckets[i].UpperBound) || !sameFloat(a.Buckets[i].Count, b.Buckets[i].Count) {
			return false
		}
	}
	return true
}

// FuzzMultiprocStore: two fuzzed files, written by writers that a fuzzed sequence of events
// starts, kills, revives (a new process with the pid, writing the other content in place),
// deletes, replaces and rechecks; after each event a reader with the store and one reading
// every file serve exactly the same merge (to the bit), whatever the contents.
func FuzzMultiprocStore(f *testing.F) {
	seeds := mpSeeds(f)
	for i := 0; i+1 < len(seeds); i += 5 {
		f.Add(seeds[i], seeds[i+1], []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, byte(i)})
	}
	names := []string{"counter", "gauge_all", "gauge_min", "gauge_livemostrecent", "histogram", "summary", "gauge_sum", "gauge_max"}
	f.Fuzz(func(t *testing.T, a, b []byte, ops []byte) {
		if len(ops) > 32 {
			ops = ops[:32]
		}
		dir := t.TempDir()
		proc := newFakeProc(t, true)
		opts := Options{ProcRoot: proc.root, MaxBytes: 1 << 20}
		st := NewReader(opts)
		defer st.Close()
		clock := time.Now().Add(time.Minute)
		st.now = func() time.Time { return clock }
		opts.NoStore = true
		ref := NewReader(opts)
		defer ref.Close()
		content := [2][]byte{a, b}
		file := func(op byte) string {
			return names[int(op>>4)%len(names)] + "_" + strconv.Itoa(100+int(op>>3)%3) + ".db"
		}
		pid := func(op byte) int { return 100 + int(op>>3)%3 }
		proc.start(99) // a writer always alive: dead ones are folded
		writeFile(t, dir, "counter_99.db", encodeDB(GenValue, 0, testEntry{key: counterKey("c", ""), v: 1}))
		for i, op := range ops {
			switch op & 7 {
			case 0, 1: // a writer (alive) writes one of the contents
				if pid(op) != proc.last {
					proc.start(pid(op))
				}
				writeFile(t, dir, file(op), content[op&1])
			case 2:
				proc.kill(pid(op))
			case 3: // revived: a new process with the pid rewrites its file in place
				if _, err := os.Stat(filepath.Join(dir, file(op))); err == nil && pid(op) != proc.last {
					proc.start(pid(op))
					fh, err := os.OpenFile(filepath.Join(dir, file(op)), os.O_WRONLY, 0)
					if err != nil {
						t.Fatal(err)
					}
					_, _ = fh.WriteAt(content[(op>>6)&1], 0)
					fh.Close()
				}
			case 4:
				_ = os.Remove(filepath.Join(dir, file(op)))
			case 5: // replaced by another file
				tmp := filepath.Join(dir, ".tmp")
				if err := os.WriteFile(tmp, content[(op>>6)&1], 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(tmp, filepath.Join(dir, file(op))); err != nil {
					t.Fatal(err)
				}
			case 6:
				clock = clock.Add(DefaultRecheckInterval)
			}
			got, err1 := st.Read(context.Background(), dir)
			want, err2 := ref.Read(context.Background(), dir)
			if (err1 == nil) != (err2 == nil) || (err1 != nil && fetch.ReasonOf(err1) != fetch.ReasonOf(err2)) {
				t.Fatalf("event %d (%d): store %v, no store %v", i, op, err1, err2)
			}
			if err1 != nil {
				if fetch.ReasonOf(err1) != fetch.ReasonTooLarge {
					t.Fatalf("event %d: %v", i, err1)
				}
				continue
			}
			compareMerges(t, fmt.Sprintf("event %d (%d)", i, op), got, want)
		}
	})
}
