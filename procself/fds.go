package procself

import (
	"fmt"
	"syscall"

	"github.com/wsgi-exporter/wsgi_exporter/internal/dirent"
)

// OpenFDs counts the process's open file descriptors, but for those the Reader keeps. Since
// Linux 6.2 the size of /proc/self/fd is that count (one stat, as procfs's
// FileDescriptorsLen does); before, the directory's entries are counted with getdents into a
// buffer the Reader keeps (the directory's own descriptor is counted, as a listing counts it).
func (r *Reader) OpenFDs() (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	path := r.fdPath
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("stat %s: %w", path, err)
	}
	if st.Size > 0 {
		return int(st.Size) - len(r.kept), nil
	}
	n, err := r.countEntries(path)
	return n - len(r.kept), err
}

// maxDirents bounds the count (a process has at most its RLIMIT_NOFILE descriptors).
const maxDirents = 1 << 24

func (r *Reader) countEntries(path string) (int, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", path, err)
	}
	defer syscall.Close(fd)
	if r.dirBuf == nil {
		r.dirBuf = make([]byte, 16<<10)
	}
	count := 0
	errTooMany := fmt.Errorf("more than %d entries", maxDirents)
	err = dirent.Read(fd, r.dirBuf, func([]byte, uint64, uint8) error {
		if count++; count > maxDirents {
			return errTooMany
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("listing %s: %w", path, err)
	}
	return count, nil
}

// Limits are the process's soft limits that the process metrics show, as getrlimit gives
// them (RLIM_INFINITY: the largest uint64, as procfs reads "unlimited").
type Limits struct {
	OpenFiles    uint64
	AddressSpace uint64
}

// ReadLimits reads the soft limits of open files and address space.
func ReadLimits() (Limits, error) {
	var nofile, as syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile); err != nil {
		return Limits{}, fmt.Errorf("getrlimit(RLIMIT_NOFILE): %w", err)
	}
	if err := syscall.Getrlimit(syscall.RLIMIT_AS, &as); err != nil {
		return Limits{}, fmt.Errorf("getrlimit(RLIMIT_AS): %w", err)
	}
	return Limits{OpenFiles: nofile.Cur, AddressSpace: as.Cur}, nil
}
