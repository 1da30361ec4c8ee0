package gunicorn

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/procfs"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// MaxWorkers bounds how many children of one master are read per scrape, so a runaway
// process tree cannot make a scrape unbounded.
const MaxWorkers = 1024

// userHZ is the unit of the start time in /proc/<pid>/stat (USER_HZ is 100 on every Linux
// architecture Go supports).
const userHZ = 100

// Master is a gunicorn master process and its workers as read from /proc.
type Master struct {
	PID        int
	Pidfile    string  // the file the pid was read from: the pidfile or its USR2 "<pidfile>.2"
	StartTime  float64 // unix seconds
	CPUSeconds float64
	RSSBytes   float64
	Workers    []Worker // sorted by PID
}

// Worker is one worker process: a child of the master.
type Worker struct {
	PID        int
	StartTime  float64 // unix seconds
	CPUSeconds float64 // user + system
	RSSBytes   float64
	PSSBytes   float64 // proportional set size, valid when HasPSS
	HasPSS     bool
	// HeartbeatAge is the time since the worker last touched its heartbeat file, valid when
	// HasHeartbeat. It is the signal gunicorn's own --timeout acts on.
	HeartbeatAge float64
	HasHeartbeat bool
}

// ProcReader reads gunicorn processes from a procfs mount.
type ProcReader struct {
	fs   procfs.FS
	root string
	// Now returns the wall-clock time (gunicorn up to 21 stamps the heartbeat ctime with it).
	Now func() time.Time
	// Monotonic returns CLOCK_MONOTONIC in seconds (gunicorn 22+ stamps the heartbeat mtime
	// with it).
	Monotonic func() (float64, error)
}

// NewProcReader returns a reader of the procfs mounted at root ("/proc" when empty).
func NewProcReader(root string) (*ProcReader, error) {
	if root == "" {
		root = procfs.DefaultMountPoint
	}
	pfs, err := procfs.NewFS(root)
	if err != nil {
		return nil, fmt.Errorf("opening procfs at %s: %w", root, err)
	}
	return &ProcReader{fs: pfs, root: root, Now: time.Now, Monotonic: monotonicNow}, nil
}

// isGunicornPid reports whether pid runs and is gunicorn.
func (r *ProcReader) isGunicornPid(pid int) bool {
	p, err := r.fs.Proc(pid)
	if err != nil {
		return false
	}
	cmd, err := p.CmdLine()
	return err == nil && isGunicorn(cmd)
}

// Read reads the master named by pidfile and its workers. A missing or stale pidfile (pid
// gone, or not a gunicorn process) is an error with reason not_found.
func (r *ProcReader) Read(ctx context.Context, pidfile string) (*Master, error) {
	pid, used, err := r.ReadPidfile(pidfile)
	if err != nil {
		return nil, err
	}
	p, err := r.fs.Proc(pid)
	if err != nil {
		return nil, fetch.Errorf(fetch.ReasonNotFound, "stale pidfile %s: pid %d is not running", used, pid)
	}
	cmd, err := p.CmdLine()
	if err != nil {
		return nil, r.procErr(pid, "reading command line", err)
	}
	if !isGunicorn(cmd) {
		// Name the process by its short name only: its command line can hold secrets
		// (passwords, tokens) and this error is logged.
		return nil, fetch.Errorf(fetch.ReasonNotFound, "stale pidfile %s: pid %d is not gunicorn (comm %q)", used, pid, procComm(p))
	}
	bootTime, err := r.bootTime()
	if err != nil {
		return nil, err
	}
	st, err := p.Stat()
	if err != nil {
		return nil, r.procErr(pid, "reading stat", err)
	}
	m := &Master{
		PID:        pid,
		Pidfile:    used,
		StartTime:  bootTime + float64(st.Starttime)/userHZ,
		CPUSeconds: st.CPUTime(),
		RSSBytes:   float64(st.ResidentMemory()),
	}
	children, err := r.children(pid)
	if err != nil {
		return nil, err
	}
	// A USR2 upgrade forks the new master from the old one: it is a child, not a worker.
	newMaster, _ := readPid(pidfile + ".2")
	for _, c := range children {
		if err := ctx.Err(); err != nil {
			return nil, fetch.Errorf(fetch.ReasonTimeout, "reading workers: %w", err)
		}
		if c == newMaster && pid != newMaster {
			continue
		}
		w, ok := r.worker(c, bootTime)
		if ok {
			m.Workers = append(m.Workers, w)
		}
		if len(m.Workers) >= MaxWorkers {
			break
		}
	}
	return m, nil
}

// isGunicorn tells a gunicorn master from another program that reuses a stale pid: its
// command line names gunicorn (the script, `-m gunicorn`, or a set process title).
func isGunicorn(cmd []string) bool {
	for _, a := range cmd {
		if strings.Contains(a, "gunicorn") {
			return true
		}
	}
	return false
}

// procComm returns the process's short name from /proc/<pid>/comm (at most 15 bytes, set by
// the kernel from the executable's name or by prctl), or "?" when it cannot be read.
func procComm(p procfs.Proc) string {
	c, err := p.Comm()
	if err != nil {
		return "?"
	}
	return truncate(c, 16)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func (r *ProcReader) procErr(pid int, what string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		return fetch.Errorf(fetch.ReasonNotFound, "pid %d vanished while %s", pid, what)
	}
	if errors.Is(err, fs.ErrPermission) {
		return fetch.Errorf(fetch.ReasonPermission, "pid %d: %s: %w (run as the same user as gunicorn or as root)", pid, what, err)
	}
	return fetch.Wrap(fetch.ReasonRead, fmt.Errorf("pid %d: %s: %w", pid, what, err))
}

func (r *ProcReader) bootTime() (float64, error) {
	st, err := r.fs.Stat()
	if err != nil {
		return 0, fetch.Wrap(fetch.ReasonRead, fmt.Errorf("reading %s/stat: %w", r.root, err))
	}
	return float64(st.BootTime), nil
}

// children lists the pids whose parent is pid, sorted. It reads the kernel's
// /proc/<pid>/task/*/children lists and falls back to a scan of every process.
func (r *ProcReader) children(pid int) ([]int, error) {
	tasks, err := os.ReadDir(filepath.Join(r.root, strconv.Itoa(pid), "task"))
	if err != nil {
		return nil, r.procErr(pid, "listing tasks", err)
	}
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(r.root, strconv.Itoa(pid), "task", t.Name(), "children"))
		if errors.Is(err, fs.ErrNotExist) && len(out) == 0 {
			return r.scanChildren(pid)
		}
		if err != nil {
			continue // the thread ended meanwhile
		}
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	sort.Ints(out)
	return out, nil
}

// scanChildren finds pid's children by reading every process' stat (kernels without
// CONFIG_PROC_CHILDREN).
func (r *ProcReader) scanChildren(pid int) ([]int, error) {
	all, err := r.fs.AllProcs()
	if err != nil {
		return nil, fetch.Wrap(fetch.ReasonRead, fmt.Errorf("listing processes: %w", err))
	}
	var out []int
	for _, p := range all {
		st, err := p.Stat()
		if err == nil && st.PPID == pid {
			out = append(out, p.PID)
		}
	}
	sort.Ints(out)
	return out, nil
}

// worker reads one worker. ok is false when it ended meanwhile.
func (r *ProcReader) worker(pid int, bootTime float64) (Worker, bool) {
	p, err := r.fs.Proc(pid)
	if err != nil {
		return Worker{}, false
	}
	st, err := p.Stat()
	if err != nil {
		return Worker{}, false
	}
	w := Worker{
		PID:        pid,
		StartTime:  bootTime + float64(st.Starttime)/userHZ,
		CPUSeconds: st.CPUTime(),
		RSSBytes:   float64(st.ResidentMemory()),
	}
	if sm, err := p.ProcSMapsRollup(); err == nil {
		w.PSSBytes, w.HasPSS = float64(sm.Pss), true
	}
	w.HeartbeatAge, w.HasHeartbeat = r.heartbeat(pid)
	return w, true
}
