package multiproc

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// storeFixture: writers 100 (alive) and 200, 201 (dead), each with a counter and a histogram
// file, read by a reader whose clock the test moves.
type storeFixture struct {
	t     *testing.T
	dir   string
	proc  *fakeProc
	r     *Reader
	clock time.Time
}

func newStoreFixture(t *testing.T, loadavg bool, opts Options) *storeFixture {
	f := &storeFixture{t: t, dir: t.TempDir(), proc: newFakeProc(t, loadavg), clock: time.Now().Add(time.Minute)}
	for _, pid := range []int{200, 201, 100} {
		f.proc.start(pid)
		f.writeCounter(pid, float64(pid))
		writeFile(t, f.dir, "histogram_"+strconv.Itoa(pid)+".db", encodeDB(GenValue, 4096,
			testEntry{key: `["h", "h_bucket", {"le": "1.0"}, "H."]`, v: 1},
			testEntry{key: `["h", "h_bucket", {"le": "+Inf"}, "H."]`, v: 2},
			testEntry{key: `["h", "h_sum", {}, "H."]`, v: 0.5}))
	}
	f.proc.kill(200)
	f.proc.kill(201)
	opts.ProcRoot = f.proc.root
	f.r = NewReader(opts)
	f.r.now = func() time.Time { return f.clock } // a minute after the files were written
	t.Cleanup(f.r.Close)
	return f
}

func (f *storeFixture) writeCounter(pid int, v float64) {
	writeFile(f.t, f.dir, "counter_"+strconv.Itoa(pid)+".db", encodeDB(GenValue, 4096, testEntry{key: counterKey("c", ""), v: v}))
}

// rewrite writes a counter file in place (same inode: the directory does not change).
func (f *storeFixture) rewrite(pid int, v float64) {
	fh, err := os.OpenFile(filepath.Join(f.dir, "counter_"+strconv.Itoa(pid)+".db"), os.O_WRONLY, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	defer fh.Close()
	if _, err := fh.WriteAt(encodeDB(GenValue, 4096, testEntry{key: counterKey("c", ""), v: v}), 0); err != nil {
		f.t.Fatal(err)
	}
}

func (f *storeFixture) read() *Snapshot {
	f.t.Helper()
	snap, err := f.r.Read(context.Background(), f.dir)
	if err != nil {
		f.t.Fatal(err)
	}
	return snap
}

func counterValue(t *testing.T, snap *Snapshot) float64 {
	t.Helper()
	c := famByName(snap, "c")
	if c == nil || len(c.Series) != 1 {
		t.Fatalf("c: %+v", c)
	}
	return c.Series[0].Value
}

// TestMultiprocStoreFolds: the first read folds the dead writers' files, later reads do not
// list the directory or open them (a folded file rewritten in place goes unseen), and only
// the live writer's files stay mapped; a recheck finds the rewritten file and takes it back.
func TestMultiprocStoreFolds(t *testing.T) {
	f := newStoreFixture(t, true, Options{})
	snap := f.read()
	if got := counterValue(t, snap); got != 501 {
		t.Fatalf("c = %v, want 501", got)
	}
	if s := snap.Store; s.Files != 4 || s.Processes != 2 || s.Folded != 4 || s.Skipped != 4 || s.Entries != 8 || !s.Listed {
		t.Fatalf("store after the first read: %+v", s)
	}
	if len(snap.Files) != 2 || f.r.mapCount != 2 {
		t.Fatalf("read %d files, %d mapped; want the live writer's 2", len(snap.Files), f.r.mapCount)
	}
	if p := snap.Processes; p.Alive != 1 || p.Dead != 2 || p.Unknown != 0 {
		t.Fatalf("processes %+v", p)
	}
	if ts := snap.Types[TypeCounter]; ts.Files != 3 || ts.DeadFiles != 2 || ts.Size != 3*4096 {
		t.Fatalf("counter files %+v", ts)
	}
	h := famByName(snap, "h")
	if h == nil || h.Series[0].Count != 9 || h.Series[0].Sum != 1.5 || h.Series[0].Buckets[0].Count != 3 {
		t.Fatalf("h: %+v", h)
	}
	// A folded file changed in place, with no sign in the directory: not seen.
	f.rewrite(200, 1000)
	snap = f.read()
	if got := counterValue(t, snap); got != 501 || snap.Store.Listed || snap.Store.Folded != 0 {
		t.Fatalf("second read: c = %v, listed %v, folded %d; want 501 from the store, no listing", got, snap.Store.Listed, snap.Store.Folded)
	}
	// The recheck stats it, takes it back and folds it again with what it holds now.
	f.clock = f.clock.Add(DefaultRecheckInterval)
	snap = f.read()
	if got := counterValue(t, snap); got != 1301 || !snap.Store.Listed || snap.Store.TakenBack[TakeBackChanged] != 1 || snap.Store.Folded != 1 {
		t.Fatalf("recheck: c = %v, store %+v; want 1301, counter_200.db taken back (changed) and folded again", got, snap.Store)
	}
}

// TestMultiprocStorePIDReuse: a folded writer's pid handed out again (seen in loadavg) takes
// its files back out of the store at the next read; the new process' writes to them are then
// read live and counted once. Without loadavg (another pid namespace) every sleeping pid is
// looked up at every read.
func TestMultiprocStorePIDReuse(t *testing.T) {
	for _, loadavg := range []bool{true, false} {
		f := newStoreFixture(t, loadavg, Options{})
		f.read()
		f.proc.start(300) // another process: loadavg moves, pid 200 is not its
		if snap := f.read(); snap.Store.Files != 4 || len(snap.Store.TakenBack) != 0 {
			t.Fatalf("loadavg %v: an unrelated fork took back %+v", loadavg, snap.Store)
		}
		f.proc.start(200)   // pid 200 handed out again
		f.rewrite(200, 250) // the new process reopens the file and adds 50
		snap := f.read()
		if got := counterValue(t, snap); got != 551 {
			t.Fatalf("loadavg %v: c = %v, want 551 (100 + 250 + 201)", loadavg, got)
		}
		if snap.Store.TakenBack[TakeBackAlive] != 2 || snap.Store.Files != 2 || snap.Store.Listed {
			t.Fatalf("loadavg %v: store %+v; want pid 200's 2 files taken back (alive), no listing", loadavg, snap.Store)
		}
		if f.r.mapCount != 4 {
			t.Fatalf("loadavg %v: %d files mapped, want the 4 of the live writers", loadavg, f.r.mapCount)
		}
		// It dies again: folded again, every value the same.
		f.proc.kill(200)
		snap = f.read()
		if got := counterValue(t, snap); got != 551 || snap.Store.Folded != 2 || snap.Store.Files != 4 {
			t.Fatalf("loadavg %v: after the second death c = %v, store %+v", loadavg, got, snap.Store)
		}
	}
}

// TestMultiprocStoreListing: a new file (the directory's times move) is listed and read at
// the next read; a listing taken within 2 s of the directory's last change is not trusted;
// a removed folded file is taken back.
func TestMultiprocStoreListing(t *testing.T) {
	f := newStoreFixture(t, true, Options{})
	f.read()
	f.proc.start(101)
	f.writeCounter(101, 1000)
	snap := f.read()
	if got := counterValue(t, snap); got != 1501 || !snap.Store.Listed {
		t.Fatalf("new file: c = %v, listed %v", got, snap.Store.Listed)
	}
	// Listed at the clock's time; now pretend the listing came right after the change.
	f.r.dir.listedAt = time.Unix(0, f.r.dir.mtime).Add(time.Second)
	if snap := f.read(); !snap.Store.Listed {
		t.Fatal("a listing taken 1 s after the directory changed was trusted")
	}
	if snap := f.read(); snap.Store.Listed {
		t.Fatal("listed again with the directory unchanged")
	}
	if err := os.Remove(filepath.Join(f.dir, "counter_201.db")); err != nil {
		t.Fatal(err)
	}
	snap = f.read()
	if got := counterValue(t, snap); got != 1300 || snap.Store.TakenBack[TakeBackRemoved] != 1 || snap.Store.Files != 3 {
		t.Fatalf("removed: c = %v, store %+v", got, snap.Store)
	}
}

// TestMultiprocStoreReset: a directory wiped and refilled (a deploy) leaves nothing of the
// old files; a directory replaced under the same path empties the store at once.
func TestMultiprocStoreReset(t *testing.T) {
	f := newStoreFixture(t, true, Options{})
	f.read()
	des, _ := os.ReadDir(f.dir)
	for _, de := range des {
		if err := os.Remove(filepath.Join(f.dir, de.Name())); err != nil {
			t.Fatal(err)
		}
	}
	f.proc.start(400)
	f.writeCounter(400, 7)
	f.writeCounter(401, 3) // dead
	snap := f.read()
	if got := counterValue(t, snap); got != 10 || famByName(snap, "h") != nil {
		t.Fatalf("wiped and refilled: c = %v, h %v", got, famByName(snap, "h"))
	}
	if s := snap.Store; s.TakenBack[TakeBackRemoved] != 4 || s.Files != 1 || s.Entries != 1 || len(f.r.store.fams) != 1 {
		t.Fatalf("wiped and refilled: store %+v, %d families", s, len(f.r.store.fams))
	}
	// Replaced: another directory at the path.
	old := f.dir + ".old"
	if err := os.Rename(f.dir, old); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(f.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f.writeCounter(400, 5)
	snap = f.read()
	if got := counterValue(t, snap); got != 5 || !snap.Store.Reset || snap.Store.Files != 0 || len(f.r.store.fams) != 0 {
		t.Fatalf("replaced: c = %v, store %+v", got, snap.Store)
	}
}

// TestMultiprocStoreNoLiveWriter: while no writer is seen alive (another pid namespace, or
// the app stopped) nothing is folded: every file is read at every scrape.
func TestMultiprocStoreNoLiveWriter(t *testing.T) {
	f := newStoreFixture(t, true, Options{})
	f.proc.kill(100)
	snap := f.read()
	if got := counterValue(t, snap); got != 501 || snap.Store.Files != 0 || len(snap.Files) != 6 {
		t.Fatalf("c = %v, store %+v, %d files read", got, snap.Store, len(snap.Files))
	}
	if p := snap.Processes; p.Dead != 3 {
		t.Fatalf("processes %+v", p)
	}
}

// TestMultiprocStoreOff: with NoStore, or without a procfs, nothing is folded.
func TestMultiprocStoreOff(t *testing.T) {
	for _, o := range []Options{{NoStore: true}, {}} {
		f := newStoreFixture(t, true, o)
		if o.ProcRoot == "" && !o.NoStore {
			f.r.opts.ProcRoot = ""
		}
		for i := 0; i < 2; i++ {
			snap := f.read()
			if got := counterValue(t, snap); got != 501 || snap.Store.Files != 0 || len(snap.Files) != 6 {
				t.Fatalf("%+v: c = %v, store %+v, %d files read", o, got, snap.Store, len(snap.Files))
			}
		}
	}
}
