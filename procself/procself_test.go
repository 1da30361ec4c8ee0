package procself

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/procfs"
)

// The readings are procfs's, the library client_golang's process collector reads them with.
func TestMatchesProcfs(t *testing.T) {
	noErr := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	r := NewReader()
	p, err := procfs.Self()
	noErr(err)
	pstat := func() procfs.ProcStat {
		s, err := p.Stat()
		noErr(err)
		return s
	}
	// procfs reads before and after ours: the CPU times are between its two, and the memory
	// sizes are its own when it read the same twice (taken again until it did).
	var want procfs.ProcStat
	var got Stat
	for try := 0; ; try++ {
		want = pstat()
		got, err = r.Stat()
		noErr(err)
		after := pstat()
		if got.StartTicks != want.Starttime || got.UTime < uint64(want.UTime) || got.STime < uint64(want.STime) ||
			got.UTime > uint64(after.UTime) || got.STime > uint64(after.STime) ||
			got.CPUSeconds() < want.CPUTime() || got.CPUSeconds() > after.CPUTime() {
			t.Fatalf("stat %+v, procfs %+v then %+v", got, want, after)
		}
		if want.VSize == after.VSize && want.RSS == after.RSS {
			if got.VSize != uint64(want.VSize) || got.RSS != int64(want.RSS) || got.RSS <= 0 {
				t.Errorf("stat %+v, procfs vsize %d rss %d", got, want.VSize, want.RSS)
			}
			break
		}
		if try == 20 {
			t.Fatal("procfs's vsize and rss never read the same twice in a row")
		}
	}
	fs, err := procfs.NewDefaultFS()
	noErr(err)
	ks, err := fs.Stat()
	noErr(err)
	bt, err := r.BootTime()
	if err != nil || bt != ks.BootTime {
		t.Errorf("boot time %d (%v), procfs %d", bt, err, ks.BootTime)
	}
	wantStart, _ := want.StartTime()
	if start := float64(bt) + float64(got.StartTicks)/UserHZ; start != wantStart {
		t.Errorf("start time %v, procfs %v", start, wantStart)
	}

	// A soft address-space limit of its own, so that "unlimited" is not all that is compared.
	var as syscall.Rlimit
	noErr(syscall.Getrlimit(syscall.RLIMIT_AS, &as))
	noErr(syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: min(as.Max, 1<<42), Max: as.Max}))
	defer syscall.Setrlimit(syscall.RLIMIT_AS, &as)
	lim, err := ReadLimits()
	noErr(err)
	pl, err := p.Limits()
	noErr(err)
	if lim.OpenFiles != pl.OpenFiles || lim.AddressSpace != pl.AddressSpace || lim.AddressSpace != min(as.Max, 1<<42) {
		t.Errorf("limits %+v, procfs %d %d", lim, pl.OpenFiles, pl.AddressSpace)
	}

	fds, err := r.OpenFDs()
	noErr(err)
	if len(r.kept) != 1 { // stat; netstat is read below
		t.Fatalf("%d descriptors kept", len(r.kept))
	}
	pfds, err := p.FileDescriptorsLen()
	if err != nil || fds != pfds-1 {
		t.Errorf("open fds %d, procfs %d (%v): the kept descriptor is not counted", fds, pfds, err)
	}
	// The count without the fast path: the entries, the listing's own descriptor included.
	n, err := r.countEntries("/proc/self/fd")
	if err != nil || n != pfds+1 {
		t.Errorf("counted %d entries (%v), want %d + the directory's own", n, err, pfds)
	}
	f, err := os.Open("/dev/null")
	noErr(err)
	if more, _ := r.OpenFDs(); more != fds+1 {
		t.Errorf("%d open fds after opening one more, was %d", more, fds)
	}
	f.Close()

	// The counters move with any traffic of the namespace: ours is between procfs's readings
	// before and after.
	pn, err := p.Netstat()
	noErr(err)
	ns, err := r.Netstat()
	noErr(err)
	pn2, err := p.Netstat()
	noErr(err)
	if ns.InOctets < *pn.InOctets || ns.OutOctets < *pn.OutOctets || ns.InOctets > *pn2.InOctets ||
		ns.OutOctets > *pn2.OutOctets || ns.InOctets == 0 {
		t.Errorf("netstat %+v, procfs %v %v then %v %v", ns, *pn.InOctets, *pn.OutOctets, *pn2.InOctets, *pn2.OutOctets)
	}
}

func TestParseStat(t *testing.T) {
	line := "4242 (we) ird (x) S 1 2 3 4 5 6 7 8 9 10 111 222 13 14 15 16 17 18 333 444 555 19 20\n"
	s, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if (s != Stat{UTime: 111, STime: 222, StartTicks: 333, VSize: 444, RSS: 555}) {
		t.Errorf("%+v", s)
	}
	if s.CPUSeconds() != 3.33 {
		t.Errorf("cpu %v", s.CPUSeconds())
	}
	for _, bad := range []string{"", "1 (x", "1 (x) S 1 2 3", "1 (x) S 1 2 3 4 5 6 7 8 9 10 -1 222 13 14 15 16 17 18 333 444 555",
		"1 (x) S 1 2 3 4 5 6 7 8 9 10 111 222 13 14 15 16 17 18 333 99999999999999999999999 555"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseNetstat(t *testing.T) {
	in := "TcpExt: A B\nTcpExt: 1 2\nIpExt: InNoRoutes InOctets OutOctets\nIpExt: 0 123 456\n"
	ns, err := parseNetstat([]byte(in))
	if err != nil || ns != (Netstat{123, 456}) {
		t.Errorf("%+v %v", ns, err)
	}
	if ns, err := parseNetstat([]byte("TcpExt: A\nTcpExt: 1\n")); err != nil || ns != (Netstat{}) {
		t.Errorf("no IpExt: %+v %v", ns, err)
	}
	for _, bad := range []string{"IpExt: InOctets OutOctets\nIpExt: 1\n", "IpExt: InOctets\nIpExt: x\n", "IpExt: InOctets\nTcpExt: 1\n"} {
		if _, err := parseNetstat([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// Every read is bounded: a file over the bound is an error, not a bigger buffer.
func TestReadBounded(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "big")
	if err := os.WriteFile(path, []byte(strings.Repeat("x", 100<<10)), 0o600); err != nil {
		t.Fatal(err)
	}
	r := newReader(dir)
	if _, err := r.readFile(path, 64<<10); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("err %v", err)
	}
	b, err := r.readFile(path, 100<<10)
	if err != nil || len(b) != 100<<10 {
		t.Errorf("%d bytes, %v", len(b), err)
	}
	if _, err := r.Stat(); err == nil {
		t.Error("no error without a stat file")
	}
	if len(r.kept) != 1 {
		t.Errorf("%d descriptors kept, want the big file's", len(r.kept))
	}
	// Grown past the bound while kept open: an error, and the file is let go.
	if err := os.WriteFile(path, []byte(strings.Repeat("x", 200<<10)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := r.readFile(path, 100<<10); err == nil || len(r.kept) != 0 {
		t.Errorf("err %v, %d kept", err, len(r.kept))
	}
	r.Close()
}

// A kept descriptor reads the file afresh: the CPU time moves.
func TestKeptStatMoves(t *testing.T) {
	r := NewReader()
	defer r.Close()
	a, err := r.Stat()
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	deadline := time.Now().Add(10 * time.Second)
	for start := a; ; {
		if time.Now().After(deadline) {
			t.Fatal("utime+stime did not move in 10 s of work: the kept descriptor reads an old copy")
		}
		for i := range 1 << 20 {
			x += i
		}
		b, err := r.Stat()
		if err != nil {
			t.Fatal(err)
		}
		if b.UTime+b.STime > start.UTime+start.STime {
			break
		}
	}
	_ = x
	if len(r.kept) != 1 {
		t.Errorf("%d kept", len(r.kept))
	}
}
