package multiproc

import (
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeProc is a procfs of directories named by pid, with loadavg and self when asked.
type fakeProc struct {
	t    testing.TB
	root string
	last int
}

func newFakeProc(t testing.TB, withLoadavg bool) *fakeProc {
	p := &fakeProc{t: t, root: t.TempDir(), last: 100}
	if withLoadavg {
		if err := os.Symlink(strconv.Itoa(os.Getpid()), filepath.Join(p.root, "self")); err != nil {
			t.Fatal(err)
		}
		p.writeLoadavg()
	}
	return p
}

func (p *fakeProc) writeLoadavg() {
	if err := os.WriteFile(filepath.Join(p.root, "loadavg"), fmt.Appendf(nil, "0.00 0.00 0.00 1/100 %d\n", p.last), 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// start makes pid exist, as a fork that was handed it.
func (p *fakeProc) start(pid int) {
	if err := os.MkdirAll(filepath.Join(p.root, strconv.Itoa(pid)), 0o755); err != nil {
		p.t.Fatal(err)
	}
	p.last = pid
	if _, err := os.Stat(filepath.Join(p.root, "loadavg")); err == nil {
		p.writeLoadavg()
	}
}

func (p *fakeProc) kill(pid int) {
	if err := os.RemoveAll(filepath.Join(p.root, strconv.Itoa(pid))); err != nil {
		p.t.Fatal(err)
	}
}

// sameFloat: equal bits, or both NaN.
func sameBits(a, b float64) bool {
	return math.Float64bits(a) == math.Float64bits(b) || (a != a && b != b)
}

// compareMerges fails unless two snapshots hold the same families, in the same order, with
// the same series to the bit, and drop the same entries.
// readBoth reads dir with the reader under test, then with the reference one (compareMerges).
func readBoth(t *testing.T, got, ref *Reader, dir string) (*Snapshot, *Snapshot) {
	t.Helper()
	g, err := got.Read(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	w, err := ref.Read(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return g, w
}

func compareMerges(t *testing.T, what string, got, want *Snapshot) {
	t.Helper()
	if len(got.Families) != len(want.Families) {
		t.Fatalf("%s: %d families, want %d:\n%v\n%v", what, len(got.Families), len(want.Families), famNames(got), famNames(want))
	}
	for i := range want.Families {
		g, w := got.Families[i], want.Families[i]
		if g.Name != w.Name || g.Type != w.Type || g.Help != w.Help || g.Mode != w.Mode {
			t.Fatalf("%s: family %d is %s %s %q %s, want %s %s %q %s", what, i, g.Name, g.Type, g.Help, g.Mode, w.Name, w.Type, w.Help, w.Mode)
		}
		gs := map[string]Series{}
		for _, s := range g.Series {
			gs[labelsID(s.Labels)] = s
		}
		if len(gs) != len(w.Series) {
			t.Fatalf("%s: %s (%s %s) has %d series, want %d:\n%+v\n%+v", what, w.Name, w.Type, w.Mode, len(gs), len(w.Series), g.Series, w.Series)
		}
		for _, ws := range w.Series {
			s, ok := gs[labelsID(ws.Labels)]
			same := ok && sameBits(s.Value, ws.Value) && sameBits(s.Count, ws.Count) && sameBits(s.Sum, ws.Sum) &&
				s.HasCount == ws.HasCount && s.HasSum == ws.HasSum && len(s.Buckets) == len(ws.Buckets)
			for j := 0; same && j < len(ws.Buckets); j++ {
				same = sameBits(s.Buckets[j].UpperBound, ws.Buckets[j].UpperBound) && sameBits(s.Buckets[j].Count, ws.Buckets[j].Count)
			}
			if !same {
				t.Fatalf("%s: %s (%s %s) %v = %+v, want %+v", what, w.Name, w.Type, w.Mode, ws.Labels, s, ws)
			}
		}
	}
	for _, r := range []string{EntryReasonBadKey, EntryReasonBadSample, EntryReasonTypeClash, EntryReasonKeyTooLong} {
		if got.Dropped[r] != want.Dropped[r] {
			t.Fatalf("%s: dropped %v, want %v", what, got.Dropped, want.Dropped)
		}
	}
	if got.Entries != want.Entries || got.Bytes != want.Bytes {
		t.Fatalf("%s: %d entries and %d bytes, want %d and %d", what, got.Entries, got.Bytes, want.Entries, want.Bytes)
	}
}

func famNames(s *Snapshot) []string {
	var out []string
	for _, f := range s.Families {
		out = append(out, f.Name+"/"+f.Type)
	}
	return out
}

// storeDir is a directory written by random writers, for the differential tests.
type storeDir struct {
	t     testing.TB
	dir   string
	proc  *fakeProc
	rnd   *rand.Rand
	files map[string][]testEntry // by name: what was written
	gens  map[string]Generation
}

var storeKinds = []string{"counter", "histogram", "summary", "gauge_all", "gauge_liveall", "gauge_min",
	"gauge_max", "gauge_sum", "gauge_livesum", "gauge_livemin", "gauge_livemax", "gauge_mostrecent",
	"gauge_livemostrecent"}

func (d *storeDir) value() float64 {
	switch d.rnd.IntN(14) {
	case 0:
		return math.NaN()
	case 1:
		return math.Inf(1 - 2*d.rnd.IntN(2))
	case 2:
		return math.Copysign(0, -1)
	case 3:
		return 0
	case 4:
		return 1e308
	case 5, 6:
		return float64(d.rnd.IntN(7)) / 10
	case 7:
		return -float64(d.rnd.IntN(5))
	}
	return float64(d.rnd.IntN(4))
}

// fileKind is the kind of a file's entries (entries' argument): its type, and its mode if any.
func fileKind(name string) string {
	fn, _ := ParseFileName(name)
	if fn.Mode != "" {
		return fn.Type + "_" + fn.Mode
	}
	return fn.Type
}

// entries makes a file's entries for a kind: a few families (one name shared by every kind,
// so types clash), labels from a small set (so series meet across files), helps that differ.
func (d *storeDir) entries(kind string) []testEntry {
	var out []testEntry
	n := 1 + d.rnd.IntN(6)
	for i := 0; i < n; i++ {
		fam := []string{"m_a", "m_b", "shared"}[d.rnd.IntN(3)]
		lab := fmt.Sprintf(`{"l": "%d"}`, d.rnd.IntN(3))
		help := fmt.Sprintf("help %d", d.rnd.IntN(2))
		ts := float64(d.rnd.IntN(3)) // equal timestamps and never-set (0) gauges
		key := func(sample, labels string) string {
			return fmt.Sprintf(`["%s", "%s", %s, "%s"]`, fam, sample, labels, help)
		}
		switch kind {
		case "counter":
			out = append(out, testEntry{key: key(fam+"_total", lab), v: d.value()})
		case "summary":
			out = append(out, testEntry{key: key(fam+"_count", lab), v: d.value()}, testEntry{key: key(fam+"_sum", lab), v: d.value()})
		case "histogram":
			for _, le := range []string{"0.5", "1.0", "+Inf"}[:1+d.rnd.IntN(3)] {
				out = append(out, testEntry{key: key(fam+"_bucket", fmt.Sprintf(`{"l": "%d", "le": "%s"}`, d.rnd.IntN(3), le)), v: d.value()})
			}
			out = append(out, testEntry{key: key(fam+"_sum", lab), v: d.value()})
		default:
			out = append(out, testEntry{key: key(fam, lab), v: d.value(), ts: ts})
		}
		if d.rnd.IntN(20) == 0 {
			out = append(out, testEntry{key: "not json", v: 1})
		}
		if d.rnd.IntN(20) == 0 {
			out = append(out, testEntry{key: key(fam+"_nope", lab), v: 1}) // bad_sample
		}
	}
	return out
}

func (d *storeDir) write(name string, entries []testEntry, replace bool) {
	gen, ok := d.gens[name]
	if !ok {
		gen = []Generation{GenValue, GenTimestamp}[d.rnd.IntN(2)]
		d.gens[name] = gen
	}
	data := encodeDB(gen, 4096, entries...)
	path := filepath.Join(d.dir, name)
	if replace {
		tmp := filepath.Join(d.dir, ".tmp")
		if err := os.WriteFile(tmp, data, 0o644); err != nil {
			d.t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			d.t.Fatal(err)
		}
	} else {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			d.t.Fatal(err)
		}
		if _, err := f.WriteAt(data, 0); err != nil {
			d.t.Fatal(err)
		}
		f.Close()
	}
	d.files[name] = entries
}

// writer writes a new writer's files.
func (d *storeDir) writer(pid int) {
	for _, kind := range storeKinds {
		if d.rnd.IntN(3) == 0 {
			continue
		}
		d.write(fmt.Sprintf("%s_%d.db", kind, pid), d.entries(kind), false)
	}
}

// reopen: a new process with a writer's pid opens its files and writes on: values change in
// place, entries are appended (the client never rewrites a key elsewhere).
func (d *storeDir) reopen(pid int) {
	for _, name := range d.names(pid) {
		es := d.files[name]
		next := slices.Clone(es)
		for i := range next {
			next[i].v = d.value()
			next[i].ts += float64(d.rnd.IntN(2))
		}
		next = append(next, d.entries(fileKind(name))...)
		d.write(name, next, false)
	}
}

func (d *storeDir) names(pid int) []string {
	var out []string
	for name := range d.files {
		if fn, _ := ParseFileName(name); fn.ID == strconv.Itoa(pid) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// TestMultiprocStoreMatchesRead: through writers dying, pids reused, files deleted, replaced
// and added, a reader that folds dead writers' files into its store serves exactly what a
// reader that reads every file at every scrape serves (every type, every gauge mode, NaN, -0,
// infinities, overflowing sums, clashing types, bad keys and samples), with and without
// liveness seen through loadavg and with live* gauges of dead writers dropped or not.
func TestMultiprocStoreMatchesRead(t *testing.T) {
	for _, tc := range []struct {
		name     string
		loadavg  bool
		dropLive bool
	}{{"stat every sleeper", false, false}, {"handed-out pids", true, false}, {"drop dead live gauges", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			for seed := uint64(0); seed < storeSeeds; seed++ {
				storeScenario(t, seed, tc.loadavg, tc.dropLive)
			}
		})
	}
}

var debugStore = os.Getenv("DEBUG_STORE") != ""

func storeScenario(t *testing.T, seed uint64, loadavg, dropLive bool) {
	d := &storeDir{t: t, dir: t.TempDir(), rnd: rand.New(rand.NewPCG(seed, 7)), files: map[string][]testEntry{}, gens: map[string]Generation{}}
	d.proc = newFakeProc(t, loadavg)
	opts := Options{ProcRoot: d.proc.root, DropDeadLiveGauges: dropLive}
	st := NewReader(opts)
	defer st.Close()
	clock := time.Now()
	st.now = func() time.Time { return clock } // rechecks only when the test says
	opts.NoStore = true
	ref := NewReader(opts)
	defer ref.Close()
	alive := map[int]bool{}
	for pid := 200; pid < 206; pid++ {
		d.proc.start(pid)
		alive[pid] = true
		d.writer(pid)
	}
	d.write("counter_worker_1.db", d.entries("counter"), false) // no pid: never folded
	folded := 0
	for step := 0; step < 40; step++ {
		what := ""
		pids := slices.Sorted(func(yield func(int) bool) {
			for p := range alive {
				if !yield(p) {
					return
				}
			}
		})
		pid := pids[d.rnd.IntN(len(pids))]
		switch op := d.rnd.IntN(9); {
		case op < 3 && alive[pid]:
			what = "kill"
			d.proc.kill(pid)
			alive[pid] = false
		case op < 5 && !alive[pid] && pid != d.proc.last:
			// (A kernel hands out the last pid handed out again only after going round
			// every other pid: the recheck, not loadavg, finds that.)
			what = "reuse"
			d.proc.start(pid)
			alive[pid] = true
			d.reopen(pid)
		case op == 5:
			what = "new writer"
			p := 300 + step
			d.proc.start(p)
			alive[p] = true
			d.writer(p)
		case op == 6:
			if ns := d.names(pid); len(ns) > 0 {
				what = "delete"
				name := ns[d.rnd.IntN(len(ns))]
				if err := os.Remove(filepath.Join(d.dir, name)); err != nil {
					t.Fatal(err)
				}
				delete(d.files, name)
			}
		case op == 7:
			if ns := d.names(pid); len(ns) > 0 {
				what = "replace"
				name := ns[d.rnd.IntN(len(ns))]
				d.write(name, d.entries(fileKind(name)), true)
			}
		case op == 8 && alive[pid]:
			what = "live write"
			d.reopen(pid)
		}
		if d.rnd.IntN(6) == 0 {
			clock = clock.Add(DefaultRecheckInterval)
			what += " + recheck"
		}
		for pass := 0; pass < 2; pass++ {
			got, want := readBoth(t, st, ref, d.dir)
			if debugStore {
				for _, name := range slices.Sorted(maps.Keys(d.files)) {
					for _, e := range d.files[name] {
						if strings.Contains(e.key, os.Getenv("DEBUG_STORE")) {
							_, fold := st.store.files[name]
							t.Logf("%s folded=%v %s = %v", name, fold, e.key, e.v)
						}
					}
				}
			}
			compareMerges(t, fmt.Sprintf("seed %d step %d (%s pid %d) pass %d", seed, step, what, pid, pass), got, want)
			folded = max(folded, got.Store.Files)
			if got.Store.Files+got.Store.Skipped == 0 && len(got.Files) == 0 {
				t.Fatalf("nothing read")
			}
		}
	}
	if folded == 0 {
		t.Fatalf("seed %d: nothing was ever folded", seed)
	}
}

// storeSeeds: random scenarios per variant (fewer under the race detector, 10x slower).
var storeSeeds = uint64(12 - 8*raceEnabled)
