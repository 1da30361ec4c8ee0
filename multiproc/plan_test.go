package multiproc

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"
	"weak"
)

// TestMultiprocPlannedMatchesRead: a mapping reader serves warm reads through its plan (the
// values of unchanged layouts added into the last full merge's accumulators) and must serve
// exactly what a reader that copies and parses every file at every read serves, through values
// rewritten in place (every type and gauge mode, NaN, -0, infinities, overflowing sums, never-set
// and equal timestamps), entries appended, files truncated under the mapping, replaced, deleted
// and added. A plan is made by a full read that finds every file as the last read left it, so
// the third read of an unchanged directory is planned.
func TestMultiprocPlannedMatchesRead(t *testing.T) {
	for _, wide := range []bool{false, true} {
		planWide = wide
		for seed := uint64(0); seed < storeSeeds; seed++ {
			plannedScenario(t, seed)
		}
	}
	planWide = false
}

func plannedScenario(t *testing.T, seed uint64) {
	d := &storeDir{t: t, dir: t.TempDir(), rnd: rand.New(rand.NewPCG(seed, 11)), files: map[string][]testEntry{}, gens: map[string]Generation{}}
	for pid := 200; pid < 206; pid++ {
		d.writer(pid)
	}
	got := NewReader(Options{Workers: 1 + int(seed%3)})
	defer got.Close()
	ref := NewReader(Options{NoMmap: true})
	defer ref.Close()
	names := func() []string {
		var out []string
		for n := range d.files {
			out = append(out, n)
		}
		slices.Sort(out)
		return out
	}
	planned := 0
	for step := 0; step < 40; step++ {
		ns := names()
		name := ns[d.rnd.IntN(len(ns))]
		what := ""
		switch op := d.rnd.IntN(12); {
		case op < 7:
			what = "values"
			for _, n := range ns {
				if d.rnd.IntN(2) == 0 {
					continue
				}
				es := slices.Clone(d.files[n])
				for i := range es {
					es[i].v = d.value()
					es[i].ts = float64(d.rnd.IntN(3))
				}
				d.write(n, es, false)
			}
		case op == 7:
			what = "append"
			d.write(name, append(slices.Clone(d.files[name]), d.entries(fileKind(name))...), false)
		case op == 8:
			what = "truncate"
			if err := os.Truncate(filepath.Join(d.dir, name), int64(d.rnd.IntN(3)*4)); err != nil {
				t.Fatal(err)
			}
			d.files[name] = nil
		case op == 9:
			what = "replace"
			d.write(name, d.entries(fileKind(name)), true)
		case op == 10 && len(ns) > 1:
			what = "delete"
			if err := os.Remove(filepath.Join(d.dir, name)); err != nil {
				t.Fatal(err)
			}
			delete(d.files, name)
		default:
			what = "new writer"
			d.writer(300 + step)
		}
		for pass := 0; pass < 3; pass++ {
			before := got.planned
			g, w := readBoth(t, got, ref, d.dir)
			what := fmt.Sprintf("seed %d step %d (%s %s) pass %d planned %v", seed, step, what, name, pass, got.planned > before)
			compareMerges(t, what, g, w)
			if g.Entries != w.Entries || g.Bytes != w.Bytes || len(g.Files) != len(w.Files) || len(g.Problems) != len(w.Problems) {
				t.Fatalf("%s: entries %d bytes %d files %d problems %d, want %d %d %d %d", what, g.Entries, g.Bytes,
					len(g.Files), len(g.Problems), w.Entries, w.Bytes, len(w.Files), len(w.Problems))
			}
			for i := range w.Files {
				gf, wf := g.Files[i], w.Files[i]
				gf.mayMap, wf.mayMap = false, false
				if gf != wf {
					t.Fatalf("%s: file %+v, want %+v", what, g.Files[i], w.Files[i])
				}
			}
			if pass == 2 && len(g.Problems) == 0 && got.planned == before {
				t.Fatalf("%s: a warm read of an unchanged directory was not planned", what)
			}
			if got.planned > before {
				planned++
			}
			if pass == 0 && what != "" && d.rnd.IntN(2) == 0 {
				// Values change between the warm reads too.
				for _, n := range names() {
					es := slices.Clone(d.files[n])
					if len(es) == 0 {
						continue
					}
					for i := range es {
						es[i].v = d.value()
					}
					d.write(n, es, false)
				}
			}
		}
	}
	if planned < 20 {
		t.Fatalf("seed %d: only %d planned reads", seed, planned)
	}
}

// A full read that builds a plan and then fails (here: the all-mode gauges make more merged
// series than MaxSeries although the distinct keys fit) must leave the files readable: every
// read fails the same way, none succeeds with the files skipped as faults.
func TestMultiprocFailedPlannedReadKeepsLayouts(t *testing.T) {
	dir := t.TempDir()
	for pid := 300; pid < 304; pid++ {
		data := encodeDB(GenTimestamp, 0,
			testEntry{key: `["g", "g", {"a": "1"}, "G."]`, v: float64(pid)},
			testEntry{key: `["g", "g", {"a": "2"}, "G."]`, v: 1})
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("gauge_all_%d.db", pid)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := NewReader(Options{MaxSeries: 4})
	defer r.Close()
	for i := range 8 {
		snap, err := r.Read(context.Background(), dir)
		if err == nil {
			n := 0
			for _, f := range snap.Families {
				n += len(f.Series)
			}
			t.Fatalf("read %d succeeded with %d series and problems %v; want every read over the limit", i, n, snap.Problems)
		}
	}
}

// TestMultiprocFullReadForgetsLastMerge: once a full read starts, nothing holds the last merge
// (here a plan's) any more, so that its gauge samples, series and accumulators can be
// collected while the next merge is built, not after it (the keys kept it through their merge
// caches).
func TestMultiprocFullReadForgetsLastMerge(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "counter_1.db", encodeDB(GenValue, 0, testEntry{key: counterKey("req", `"code": "200"`), v: 3}))
	writeFile(t, dir, "gauge_livesum_1.db", encodeDB(GenValue, 0, testEntry{key: `["g", "g", {"a": "x"}, "G."]`, v: 2}))
	r := NewReader(Options{})
	defer r.Close()
	for range 3 {
		if _, err := r.Read(context.Background(), dir); err != nil {
			t.Fatal(err)
		}
	}
	if r.planned != 1 || r.plan == nil {
		t.Fatalf("%d planned reads, plan %v: want the third read planned", r.planned, r.plan)
	}
	// The gauge's family: its key is merged again only after the new file's (file name order).
	i := slices.IndexFunc(r.plan.m.order, func(f *famState) bool { return f.key.name == "g" })
	last := weak.Make(r.plan.m.order[i])
	// A new file with a new key: the next read is a full one, and keeping the new key calls
	// keyHook from a worker while it runs, before the gauge's file is merged.
	writeFile(t, dir, "counter_2.db", encodeDB(GenValue, 0, testEntry{key: counterKey("req", `"code": "500"`), v: 1}))
	held := -1
	r.keyHook = func(int) {
		runtime.GC()
		held = 0
		if last.Value() != nil {
			held = 1
		}
	}
	snap, err := r.Read(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.planned != 1 || len(snap.Families) != 2 {
		t.Fatalf("%d planned reads, %d families", r.planned, len(snap.Families))
	}
	if held != 0 {
		t.Fatalf("the last merge held during the next full read: %d (-1: not checked)", held)
	}
}

// A directory of collectAt entries or more collects when it enters the steady state (a full
// read that builds a plan) and when it leaves it (a full read that drops one), at most once
// per collectGap for all readers; reads through the plan, and full reads with no plan before
// or after, do not.
func TestMultiprocCollectsAroundPlans(t *testing.T) {
	d := &storeDir{t: t, dir: t.TempDir(), rnd: rand.New(rand.NewPCG(3, 11)), files: map[string][]testEntry{}, gens: map[string]Generation{}}
	for pid := 200; pid < 204; pid++ {
		d.writer(pid)
	}
	r := NewReader(Options{})
	defer r.Close()
	r.collectAt, r.collectGap = 1, 0
	step := func(what string, wantPlanned, wantCollected int) {
		t.Helper()
		if _, err := r.Read(context.Background(), d.dir); err != nil {
			t.Fatal(err)
		}
		if r.planned != wantPlanned || r.collected != wantCollected {
			t.Fatalf("%s: %d planned reads and %d collections, want %d and %d", what, r.planned, r.collected, wantPlanned, wantCollected)
		}
	}
	step("cold read (first sight of the files: no plan)", 0, 0)
	step("second full read (builds the plan)", 0, 1)
	step("warm read", 1, 1)
	step("warm read", 2, 1)
	d.writer(300)
	step("full read after a new file (drops the plan, builds none: the files changed)", 2, 2)
	d.writer(301)
	step("full read after another new file (no plan before or after)", 2, 2)
	step("full read that builds the plan again", 2, 3)
	step("warm read", 3, 3)
	r.collectGap = time.Hour // another reader collected a moment ago
	d.writer(302)
	step("full read dropping the plan within the gap", 3, 3)
	r.collectAt, r.collectGap = 1<<30, 0 // a small directory
	step("full read of a small directory that builds the plan", 3, 3)
}

// TestMultiprocPlanKeepsLastReadsKeys: when the key cache is full, resolveKey evicts the keys
// neither the last read nor this one used, whether the last read went through a plan or not.
// Three keys allowed; a file of two keys read until planned (with NoMmap: never), then replaced
// by one of two others: the last read's two keys stay cached, for both readers alike.
func TestMultiprocPlanKeepsLastReadsKeys(t *testing.T) {
	key := func(l string) testEntry {
		return testEntry{key: `["m", "m", {"l": "` + l + `"}, "h"]`, v: 1}
	}
	for _, noMmap := range []bool{false, true} {
		dir := t.TempDir()
		path := filepath.Join(dir, "gauge_all_1.db")
		write := func(es ...testEntry) {
			tmp := filepath.Join(dir, ".tmp")
			if err := os.WriteFile(tmp, encodeDB(GenValue, 4096, es...), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}
		write(key("a"), key("b"))
		r := NewReader(Options{MaxSeries: 3, NoMmap: noMmap})
		for range 3 {
			if _, err := r.Read(context.Background(), dir); err != nil {
				t.Fatal(err)
			}
		}
		if want := 1 - btoi(noMmap); r.planned != want {
			t.Fatalf("noMmap %v: %d planned reads, want %d", noMmap, r.planned, want)
		}
		write(key("c"), key("d"))
		if _, err := r.Read(context.Background(), dir); err != nil {
			t.Fatal(err)
		}
		for _, l := range []string{"a", "b"} {
			if r.keys[key(l).key] == nil {
				t.Errorf("noMmap %v: key %s of the last read evicted", noMmap, l)
			}
		}
		r.Close()
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
