package gunicorn

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

// heartbeatPrefix is the name gunicorn's WorkerTmp gives its temp file (tempfile.mkstemp
// with prefix "wgunicorn-" in --worker-tmp-dir, /tmp by default). The file is unlinked at
// once, so the fd link reads "<dir>/wgunicorn-XXXXXXXX (deleted)".
const (
	heartbeatPrefix  = "wgunicorn-"
	deletedSuffix    = " (deleted)"
	maxFDsInspected  = 4096
	monotonicCeiling = 1e9 // an mtime below this (2001-09-09) is a CLOCK_MONOTONIC stamp
)

// heartbeat returns the seconds since the worker's last notify(). gunicorn up to 21 calls
// fchmod, so the wall-clock ctime moves; gunicorn 22 and later call utime with
// time.monotonic(), so mtime holds a CLOCK_MONOTONIC reading.
func (r *ProcReader) heartbeat(pid int) (float64, bool) {
	fdDir := filepath.Join(r.root, strconv.Itoa(pid), "fd")
	d, err := os.Open(fdDir)
	if err != nil {
		return 0, false
	}
	names, err := d.Readdirnames(maxFDsInspected)
	d.Close()
	if err != nil && len(names) == 0 {
		return 0, false
	}
	for _, n := range names {
		target, err := os.Readlink(filepath.Join(fdDir, n))
		if err != nil || !IsHeartbeatTarget(target) {
			continue
		}
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(fdDir, n), &st); err != nil {
			continue
		}
		return r.heartbeatAge(st), true
	}
	return 0, false
}

// IsHeartbeatTarget reports whether an fd link target is a gunicorn worker's heartbeat
// file: an unlinked file named wgunicorn-*.
func IsHeartbeatTarget(target string) bool {
	if !strings.HasSuffix(target, deletedSuffix) {
		return false
	}
	base := filepath.Base(strings.TrimSuffix(target, deletedSuffix))
	return strings.HasPrefix(base, heartbeatPrefix)
}

func (r *ProcReader) heartbeatAge(st syscall.Stat_t) float64 {
	mtime := float64(st.Mtim.Sec) + float64(st.Mtim.Nsec)/1e9
	if mtime < monotonicCeiling {
		if now, err := r.Monotonic(); err == nil {
			return clampAge(now - mtime)
		}
	}
	ctime := time.Unix(int64(st.Ctim.Sec), int64(st.Ctim.Nsec)) // int32 fields on 32-bit platforms
	return clampAge(r.Now().Sub(ctime).Seconds())
}

// clampAge hides sub-tick clock skew between the kernel's file times and our clock.
func clampAge(a float64) float64 {
	if a < 0 {
		return 0
	}
	return a
}

// monotonicNow reads CLOCK_MONOTONIC, the clock Python's time.monotonic() uses on Linux.
func monotonicNow() (float64, error) {
	var ts syscall.Timespec
	const clockMonotonic = 1
	_, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockMonotonic, uintptr(unsafe.Pointer(&ts)), 0)
	if errno != 0 {
		return 0, errno
	}
	return float64(ts.Sec) + float64(ts.Nsec)/1e9, nil
}
