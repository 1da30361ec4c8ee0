package gunicorn

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"syscall"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// maxPidfileBytes bounds the read of a pidfile: gunicorn writes "<pid>\n".
const maxPidfileBytes = 64

// ReadPidfile returns the master pid named by pidfile. When a USR2 upgrade is under way the
// new master has written "<pidfile>.2"; a live pid there wins over the old master's. It
// returns the file the pid came from.
func (r *ProcReader) ReadPidfile(pidfile string) (int, string, error) {
	if pid, err := readPid(pidfile + ".2"); err == nil && r.isGunicornPid(pid) {
		return pid, pidfile + ".2", nil
	}
	pid, err := readPid(pidfile)
	if err != nil {
		return 0, pidfile, err
	}
	return pid, pidfile, nil
}

// readPid reads a pidfile as gunicorn writes it: a regular file of a few bytes. Anything
// else is not gunicorn's and is refused before a byte of it is read: a symbolic link (the
// exporter often runs with more rights than the app, and a link could point it at a file
// the app may not read), a FIFO (opened without blocking), a device or a directory. What
// is read is never put in an error (errors are logged): a pidfile that does not hold a pid
// is reported by its length only.
func readPid(path string) (int, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return 0, fetch.Errorf(fetch.ReasonNotFound, "pidfile %s does not exist (gunicorn not running, or started without --pid)", path)
		case err == syscall.ELOOP:
			return 0, fetch.Errorf(fetch.ReasonPermission, "pidfile %s is a symbolic link: not followed (gunicorn writes a regular file)", path)
		case errors.Is(err, fs.ErrPermission):
			return 0, fetch.Errorf(fetch.ReasonPermission, "pidfile %s is not readable: %w", path, &os.PathError{Op: "open", Path: path, Err: err})
		}
		return 0, fetch.Wrap(fetch.ReasonRead, &os.PathError{Op: "opening pidfile", Path: path, Err: err})
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, fetch.Wrap(fetch.ReasonRead, fmt.Errorf("pidfile %s: %w", path, err))
	}
	if !fi.Mode().IsRegular() {
		return 0, fetch.Errorf(fetch.ReasonPermission, "pidfile %s is not a regular file (%s): not read", path, fileType(fi.Mode()))
	}
	b, err := fetch.ReadAll(f, maxPidfileBytes)
	if err != nil {
		return 0, fmt.Errorf("reading pidfile %s: %w", path, err)
	}
	return parsePid(path, b)
}

// fileType names the type of a file that is not a regular one.
func fileType(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	}
	return "irregular file"
}

// parsePid parses a pidfile's content: a positive decimal pid, optionally surrounded by
// white space. The error gives the content's length, never the content.
func parsePid(path string, b []byte) (int, error) {
	s := string(bytes.TrimSpace(b))
	pid, err := strconv.Atoi(s)
	if err != nil || pid <= 0 || pid > 1<<22 {
		return 0, fetch.Errorf(fetch.ReasonDecode, "pidfile %s does not hold a pid (%d bytes that are not a decimal number from 1 to 4194304)", path, len(b))
	}
	return pid, nil
}
