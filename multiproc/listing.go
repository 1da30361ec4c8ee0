package multiproc

import (
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/wsgi-exporter/wsgi_exporter/internal/dirent"
	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// dirState is what the last listing saw of the directory itself. The listing is reused
// while the directory keeps its identity and its modification and change times: creating,
// removing or renaming a file in it moves both. A listing taken less than racyWindow after
// those times is not trusted (a change in the same tick of a coarse clock, or within the 1-2
// second granularity of some filesystems, leaves the times as they were), and every
// RecheckInterval the directory is listed whatever its times say.
type dirState struct {
	ok           bool
	dev, ino     uint64
	mtime, ctime int64 // nanoseconds
	listedAt     time.Time
}

const racyWindow = 2 * time.Second

func nsec(ts syscall.Timespec) int64 { return int64(ts.Sec)*1e9 + int64(ts.Nsec) }

// stale says whether the directory may hold other names than at the last listing.
func (d *dirState) stale(st *syscall.Stat_t) bool {
	if !d.ok || uint64(st.Dev) != d.dev || uint64(st.Ino) != d.ino || nsec(st.Mtim) != d.mtime || nsec(st.Ctim) != d.ctime {
		return true
	}
	return d.listedAt.UnixNano()-max(d.mtime, d.ctime) < int64(racyWindow)
}

func (d *dirState) set(st *syscall.Stat_t, at time.Time) {
	*d = dirState{ok: true, dev: uint64(st.Dev), ino: uint64(st.Ino), mtime: nsec(st.Mtim), ctime: nsec(st.Ctim), listedAt: at}
}

// Directory entry types of getdents (d_type).
const (
	dtUnknown = 0
	dtFIFO    = 1
	dtChr     = 2
	dtDir     = 4
	dtBlk     = 6
	dtReg     = 8
	dtLnk     = 10
	dtSock    = 12
)

// fileState is what the reader knows of one .db file of the directory.
type fileState struct {
	name  string
	fn    FileName
	ino   uint64 // from the listing
	typ   uint8  // from the listing
	pid   bool   // the id is a pid whose liveness can be checked
	seen  uint64 // the listing that last saw it
	alive int8   // at the last check: 1, 0, or -1 (unknown)

	c       *cached     // what the last read kept (mapping, layout)
	folded  bool        // in the store
	parked  bool        // a dead writer's live* gauge left out (DropDeadLiveGauges)
	foreign bool        // the last read found a link or not a regular file of the directory's
	info    FileInfo    // of the last read
	st      *fileStatAt // the file's stat at the read that folded it
}

// listProblem classifies a name that is not a .db file to read, or returns nil. A link is
// never followed out of the directory, and a FIFO is never opened (that would block).
func listProblem(name string, typ uint8) *FileProblem {
	_, err := ParseFileName(name)
	if err == nil {
		switch typ {
		case dtLnk:
			err = fileErrorf(FileReasonSymlink, "%q is a symbolic link (not followed)", name)
		case dtDir, dtFIFO, dtSock, dtChr, dtBlk:
			err = fileErrorf(FileReasonNotRegular, "%q is not a regular file (%s)", name, typeName(typ))
		}
	}
	if err == nil {
		return nil
	}
	return &FileProblem{Name: name, Reason: reasonOf(err), Err: err}
}

func typeName(typ uint8) string {
	switch typ {
	case dtDir:
		return "a directory"
	case dtFIFO:
		return "a FIFO"
	case dtSock:
		return "a socket"
	case dtChr:
		return "a character device"
	case dtBlk:
		return "a block device"
	case dtLnk:
		return "a symbolic link"
	}
	return "unknown type"
}

// relist reads the directory's names and brings the file states up to date: a name gone or
// now naming another inode has its folded contribution taken back and its mapping dropped.
func (r *Reader) relist(fd int, snap *Snapshot) error {
	r.listGen++
	gen := r.listGen
	var added []*fileState
	var probs []FileProblem
	removed := false
	if r.dirBuf == nil {
		r.dirBuf = make([]byte, 32<<10)
	}
	names := 0
	errTooMany := fetch.Errorf(fetch.ReasonTooLarge, "more than the %d files limit", r.opts.MaxFiles)
	err := dirent.Read(fd, r.dirBuf, func(nb []byte, ino uint64, typ uint8) error {
		if names++; r.opts.MaxFiles > 0 && names > r.opts.MaxFiles {
			return errTooMany
		}
		if fs := r.files[string(nb)]; fs != nil {
			if fs.ino == ino && fs.typ == typ {
				fs.seen = gen
				return nil
			}
			r.forgetFile(fs, TakeBackReplaced, snap)
			delete(r.files, fs.name)
			removed = true
		}
		name := string(nb)
		if p := listProblem(name, typ); p != nil {
			probs = append(probs, *p)
			return nil
		}
		fn, _ := ParseFileName(name)
		fs := &fileState{name: name, fn: fn, ino: ino, typ: typ, pid: isPID(fn.ID), seen: gen, alive: -1}
		r.files[name] = fs
		added = append(added, fs)
		return nil
	})
	if err != nil {
		return err
	}
	for name, fs := range r.files {
		if fs.seen != gen {
			r.forgetFile(fs, TakeBackRemoved, snap)
			delete(r.files, name)
			removed = true
		}
	}
	if removed {
		r.order = slices.DeleteFunc(r.order, func(fs *fileState) bool { return r.files[fs.name] != fs })
	}
	if len(added) > 0 {
		slices.SortFunc(added, func(a, b *fileState) int { return strings.Compare(a.name, b.name) })
		r.order = mergeSorted(r.order, added)
	}
	if removed || len(added) > 0 {
		r.activeDirty = true
	}
	slices.SortFunc(probs, func(a, b FileProblem) int { return strings.Compare(a.Name, b.Name) })
	r.listProblems = probs
	return nil
}

// mergeSorted merges two lists sorted by name.
func mergeSorted(a, b []*fileState) []*fileState {
	out := make([]*fileState, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if a[i].name < b[j].name {
			out = append(out, a[i])
			i++
		} else {
			out = append(out, b[j])
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// forgetFile drops what the reader keeps of a file that is gone or replaced.
func (r *Reader) forgetFile(fs *fileState, reason string, snap *Snapshot) {
	if fs.folded {
		r.store.takeBack(fs.name)
		fs.folded = false
		snap.Store.TakenBack[reason]++
	}
	if fs.parked {
		r.unpark(fs)
	}
	if fs.c != nil {
		r.unmap(fs.c)
		fs.c = nil
	}
	r.activeDirty = true
}
