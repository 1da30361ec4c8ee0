package multiproc

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// procWatch tells whether writers' pids exist in a procfs.
//
// A folded file's pid is not checked at every read: a new process can only take a pid that
// the kernel hands out, and /proc/loadavg names the last pid handed out, so a read checks the
// sleeping pids between the last pid it saw and the one it sees now (when the procfs is the
// exporter's own pid namespace, the one loadavg speaks of). Every RecheckInterval all of them
// are checked, whatever loadavg says.
type procWatch struct {
	root    string
	lastPID int64 // the last pid handed out, at the previous look; 0: not known
	own     int8  // root is the exporter's own pid namespace: 1 yes, 0 no, -1 not checked
	pidMax  int64
}

func newProcWatch(root string) procWatch {
	return procWatch{root: root, own: -1, pidMax: 1 << 22}
}

// exists reports whether /proc/<id> exists. A zombie, or a thread id, counts as alive.
func (p *procWatch) exists(id string) bool {
	var st syscall.Stat_t
	return syscall.Stat(p.root+"/"+id, &st) == nil
}

// pidRange is an inclusive range of pids.
type pidRange struct{ lo, hi int64 }

// handedOut returns the ranges of pids handed out since the previous call. ok is false when
// that cannot be known (the first call, loadavg unreadable or of another pid namespace):
// then every sleeping pid must be checked.
func (p *procWatch) handedOut() (ranges []pidRange, ok bool) {
	if p.own < 0 {
		p.own = 0
		if self, err := os.Readlink(p.root + "/self"); err == nil && self == strconv.Itoa(os.Getpid()) {
			p.own = 1
		}
		if b, err := os.ReadFile(p.root + "/sys/kernel/pid_max"); err == nil {
			if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 {
				p.pidMax = n
			}
		}
	}
	if p.own != 1 {
		return nil, false
	}
	cur := p.readLastPID()
	last := p.lastPID
	p.lastPID = cur
	if cur <= 0 || last <= 0 {
		return nil, false
	}
	switch {
	case cur == last:
		return nil, true
	case cur > last:
		return []pidRange{{last + 1, cur}}, true
	}
	// Wrapped round pid_max (to 300 in the initial namespace, 1 in others).
	return []pidRange{{last + 1, p.pidMax}, {1, cur}}, true
}

// readLastPID reads the last field of loadavg: the last pid handed out.
func (p *procWatch) readLastPID() int64 {
	fd, err := syscall.Open(p.root+"/loadavg", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return 0
	}
	defer syscall.Close(fd)
	var buf [128]byte
	n, err := syscall.Read(fd, buf[:])
	if err != nil || n <= 0 {
		return 0
	}
	f := strings.Fields(string(buf[:n]))
	if len(f) < 5 {
		return 0
	}
	v, err := strconv.ParseInt(f[4], 10, 64)
	if err != nil {
		return 0
	}
	return v
}

// living returns those of ids (sorted pids) that exist. Many are checked with one listing of
// the procfs instead of one stat each.
func (p *procWatch) living(ids []int64) []int64 {
	var out []int64
	if len(ids) > 64 {
		if des, err := os.ReadDir(p.root); err == nil {
			for _, de := range des {
				n, err := strconv.ParseInt(de.Name(), 10, 64)
				if err != nil {
					continue
				}
				if _, found := slices.BinarySearch(ids, n); found {
					out = append(out, n)
				}
			}
			// Threads are not listed; their ids are rarely a writer's. A thread that took a
			// sleeping pid is found by the next handed-out check or recheck when it is a
			// process; files of a pid that only a thread holds stay folded, which is right.
			return out
		}
	}
	for _, id := range ids {
		if p.exists(strconv.FormatInt(id, 10)) {
			out = append(out, id)
		}
	}
	return out
}

// within returns the pids of ids (sorted) inside the ranges.
func within(ids []int64, ranges []pidRange) []int64 {
	var out []int64
	for _, r := range ranges {
		i, _ := slices.BinarySearch(ids, r.lo)
		for ; i < len(ids) && ids[i] <= r.hi; i++ {
			out = append(out, ids[i])
		}
	}
	return out
}
