package procself

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
)

// UserHZ is the unit of the clock-tick fields of /proc/<pid>/stat, as procfs assumes it.
const UserHZ = 100

// maxStatBytes bounds the read of /proc/self/stat (a few hundred bytes; the command name is
// at most 64).
const maxStatBytes = 4 << 10

// Stat holds the fields of /proc/self/stat the process metrics use.
type Stat struct {
	UTime, STime uint64 // CPU time in user and kernel mode, in clock ticks (UserHZ)
	StartTicks   uint64 // start time after boot, in clock ticks
	VSize        uint64 // virtual memory size, bytes
	RSS          int64  // resident set, pages
}

// CPUSeconds is the user and system CPU time in seconds.
func (s Stat) CPUSeconds() float64 { return float64(s.UTime+s.STime) / UserHZ }

// ResidentBytes is the resident set in bytes.
func (s Stat) ResidentBytes() float64 { return float64(s.RSS * int64(os.Getpagesize())) }

// Reader reads the process's figures into buffers it keeps. It keeps /proc/self/stat and
// /proc/self/net/netstat open once read (opening a file of /proc costs two to three times
// reading it again from offset 0) and does not count them among the process's open
// descriptors. It may be used by several goroutines: a reading holds its lock.
type Reader struct {
	mu   sync.Mutex
	proc string // the /proc mount: "/proc" but in tests
	// The paths read at every reading, under proc, built once.
	statPath, netstatPath, fdPath string

	buf    []byte
	dirBuf []byte
	kept   map[string]int // open descriptors by path
}

// NewReader returns a Reader of the process's own figures under /proc.
func NewReader() *Reader { return newReader("/proc") }

func newReader(proc string) *Reader {
	return &Reader{proc: proc, statPath: proc + "/self/stat", netstatPath: proc + "/self/net/netstat",
		fdPath: proc + "/self/fd"}
}

// Kept is the number of descriptors the Reader keeps open.
func (r *Reader) Kept() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.kept)
}

// Close closes the descriptors the Reader keeps; a later reading opens them again.
func (r *Reader) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for path, fd := range r.kept {
		syscall.Close(fd)
		delete(r.kept, path)
	}
}

// readFile reads path from its start (at most max bytes; more is an error) into the Reader's
// buffer, which grows as needed and is kept for the next read. The file is kept open; on an
// error it is closed, and opened again by the next read.
func (r *Reader) readFile(path string, max int) (_ []byte, err error) {
	fd, ok := r.kept[path]
	if !ok {
		if fd, err = syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0); err != nil {
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
		if r.kept == nil {
			r.kept = map[string]int{}
		}
		r.kept[path] = fd
	}
	defer func() {
		if err != nil {
			syscall.Close(fd)
			delete(r.kept, path)
		}
	}()
	if r.buf == nil {
		r.buf = make([]byte, 0, 8<<10)
	}
	b := r.buf[:0]
	for {
		if len(b) == cap(b) {
			if len(b) > max {
				return nil, fmt.Errorf("%s: longer than %d bytes", path, max)
			}
			b = append(b, make([]byte, min(cap(b), max+1-len(b)))...)[:len(b)]
			r.buf = b[:0]
		}
		n, err := syscall.Pread(fd, b[len(b):cap(b)], int64(len(b)))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			break
		}
		short := n < cap(b)-len(b)
		b = b[:len(b)+n]
		if short {
			// The files read here are single-record seq_files: a read gives all there is
			// when it fits. Asking again for the end would make the kernel build the whole
			// file a second time (a pread past the start generates it anew).
			break
		}
	}
	if len(b) > max {
		return nil, fmt.Errorf("%s: longer than %d bytes", path, max)
	}
	return b, nil
}

// Stat reads /proc/self/stat.
func (r *Reader) Stat() (Stat, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, err := r.readFile(r.statPath, maxStatBytes)
	if err != nil {
		return Stat{}, err
	}
	return parseStat(b)
}

// errStat is a /proc/self/stat that does not parse.
var errStat = errors.New("/proc/self/stat: unexpected format")

// parseStat parses the fields after the command name, which ends at the last ')': state (3),
// ..., utime (14), stime (15), ..., starttime (22), vsize (23), rss (24).
func parseStat(b []byte) (Stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Stat{}, errStat
	}
	var s Stat
	field := 2 // the command name's
	rest := b[i+1:]
	for field < 24 {
		rest = bytes.TrimLeft(rest, " ")
		if len(rest) == 0 {
			return Stat{}, errStat
		}
		end := bytes.IndexAny(rest, " \n")
		if end < 0 {
			end = len(rest)
		}
		tok := rest[:end]
		rest = rest[end:]
		field++
		var err error
		switch field {
		case 14:
			s.UTime, err = parseUint(tok)
		case 15:
			s.STime, err = parseUint(tok)
		case 22:
			s.StartTicks, err = parseUint(tok)
		case 23:
			s.VSize, err = parseUint(tok)
		case 24:
			var rss uint64
			rss, err = parseUint(tok)
			s.RSS = int64(rss)
		}
		if err != nil {
			return Stat{}, fmt.Errorf("/proc/self/stat field %d: %w", field, err)
		}
	}
	return s, nil
}

func parseUint(b []byte) (uint64, error) {
	if len(b) == 0 || len(b) > 20 {
		return 0, fmt.Errorf("bad number %q", b)
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("bad number %q", b)
		}
		d := uint64(c - '0')
		if n > (^uint64(0)-d)/10 {
			return 0, fmt.Errorf("number out of range %q", b)
		}
		n = n*10 + d
	}
	return n, nil
}

// maxProcStatBytes bounds the read of /proc/stat (it grows with the CPUs and interrupts).
const maxProcStatBytes = 4 << 20

// BootTime reads the system's boot time (btime of /proc/stat), in seconds since the epoch.
// It does not change while the system runs: read it once (its buffer is not kept).
func (r *Reader) BootTime() (uint64, error) {
	path := r.proc + "/stat"
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, maxProcStatBytes))
	sc.Buffer(make([]byte, 0, 64<<10), maxProcStatBytes)
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("btime ")); ok {
			return parseUint(bytes.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return 0, fmt.Errorf("%s: no btime line", path)
}
