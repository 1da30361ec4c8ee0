package multiproc

import (
	"context"
	"encoding/binary"
	"fmt"
	"io/fs"
	"math"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// fileStatAt is what a stat says of a file.
type fileStatAt struct {
	ino, dev     uint64
	mode         uint32
	size         int64
	mtime, ctime int64 // nanoseconds
}

func statOf(st *syscall.Stat_t) fileStatAt {
	return fileStatAt{ino: uint64(st.Ino), dev: uint64(st.Dev), mode: uint32(st.Mode), size: int64(st.Size),
		mtime: nsec(st.Mtim), ctime: nsec(st.Ctim)}
}

// fstatat stats name in the directory dfd without following a link.
// maps says whether the stat of a name is the file c maps: the same inode on the directory's
// filesystem, a regular file of the mapped size (so neither replaced nor truncated).
func (st fileStatAt) maps(c *cached, dst *syscall.Stat_t) bool {
	return st.ino == c.ino && st.dev == uint64(dst.Dev) && st.size == int64(len(c.data)) && st.mode&syscall.S_IFMT == syscall.S_IFREG
}

func fstatat(dfd int, name string) (fileStatAt, error) {
	var st unix.Stat_t
	for {
		err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fileStatAt{}, err
		}
		return fileStatAt{ino: uint64(st.Ino), dev: uint64(st.Dev), mode: uint32(st.Mode), size: int64(st.Size),
			mtime: int64(st.Mtim.Sec)*1e9 + int64(st.Mtim.Nsec), ctime: int64(st.Ctim.Sec)*1e9 + int64(st.Ctim.Nsec)}, nil
	}
}

// foldCopyMax: a dead writer's file up to this used size is read with pread to be folded.
const foldCopyMax = 1 << 20

// regular returns nil when st is a regular file on the directory's filesystem (dst), else
// the reason it is not read: a link (never followed) or anything else.
func regular(name string, st fileStatAt, dst *syscall.Stat_t) error {
	switch {
	case st.mode&syscall.S_IFMT == syscall.S_IFLNK:
		return fileErrorf(FileReasonSymlink, "%q is a symbolic link (not followed)", name)
	case st.mode&syscall.S_IFMT != syscall.S_IFREG:
		return fileErrorf(FileReasonNotRegular, "%q is not a regular file", name)
	case st.dev != uint64(dst.Dev):
		return fileErrorf(FileReasonNotRegular, "%q is on another filesystem than the directory (mounted over the name)", name)
	}
	return nil
}

// ctxEvery: the loops over a file's entries look at the context every so many entries, so an
// abandoned read of a huge file stops promptly.
const ctxEvery = 4096

// readFile reads one file of the directory dfd (dst: the directory's stat) and resolves its
// entries' keys. A file is opened without following a link (O_NOFOLLOW), without blocking on
// a FIFO (O_NONBLOCK), and read only when the opened file is a regular file of the
// directory's filesystem: nothing of another file is read, logged or counted. It is mapped
// read-only and kept mapped between reads (the writers' own pages of the page cache, nothing
// copied); while its inode, size and used field stay the same, its layout is known and only
// the values are read. Otherwise it is read with pread. Worker goroutines panic on memory
// faults, so a mapped file truncated under us is a recovered read error.
func (r *Reader) readFile(ctx context.Context, dfd int, dst *syscall.Stat_t, info FileInfo, c *cached, bud *budget) (res *fileResult) {
	res = &fileResult{info: info}
	fail := func(err error) *fileResult {
		res.problem = &FileProblem{info.Name, reasonOf(err), err}
		res.info.Skipped = true
		res.info.Folded = false
		res.entries = nil
		if res.cache != nil && res.cache != c && res.cache.data != nil {
			_ = syscall.Munmap(res.cache.data) // mapped by this read, not counted yet
		}
		res.cache = nil
		return res
	}
	defer func() {
		if p := recover(); p != nil {
			res = fail(&FileError{FileReasonRead, fmt.Errorf("%s: memory fault while reading (truncated under us?): %v", info.Name, p)})
		}
	}()
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	// reserve counts a file's used part against the directory's byte limit, before it is
	// read; a used part that grew since is counted again for the difference.
	reserved := 0
	reserve := func(used int) error {
		if used <= reserved {
			return nil
		}
		n := used - reserved
		reserved = used
		if bud.bytes.Add(int64(n)) > r.opts.MaxBytes && r.opts.MaxBytes > 0 {
			return bud.fail(fetch.Errorf(fetch.ReasonTooLarge, "over the %d byte limit", r.opts.MaxBytes))
		}
		return nil
	}
	var data []byte
	var size int64
	var ino uint64
	if c != nil && c.data != nil {
		st, err := fstatat(dfd, info.Name)
		if err != nil {
			return fail(&fs.PathError{Op: "stat", Path: info.Name, Err: err})
		}
		res.st = st
		if st.maps(c, dst) {
			data, size, ino = c.data, st.size, st.ino
			res.cache = c
		} else {
			info.mayMap = !r.opts.NoMmap // replaces the old mapping, which the caller unmaps
		}
	}
	if data == nil {
		// A stat of the name first (no link followed): nothing but a regular file of the
		// directory's filesystem is opened (opening a device can have effects, a FIFO
		// blocks, a socket fails). Then the opened file is checked to be that same file.
		pre, err := fstatat(dfd, info.Name)
		if err != nil {
			return fail(&fs.PathError{Op: "stat", Path: info.Name, Err: err})
		}
		if err := regular(info.Name, pre, dst); err != nil {
			return fail(err)
		}
		fd, err := syscall.Openat(dfd, info.Name, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC|syscall.O_NOFOLLOW|syscall.O_NOCTTY, 0)
		if err == syscall.ELOOP {
			return fail(fileErrorf(FileReasonSymlink, "%q is a symbolic link (not followed)", info.Name))
		}
		if err != nil {
			return fail(&fs.PathError{Op: "open", Path: info.Name, Err: err})
		}
		defer syscall.Close(fd)
		var sst syscall.Stat_t
		if err := syscall.Fstat(fd, &sst); err != nil {
			return fail(&fs.PathError{Op: "stat", Path: info.Name, Err: err})
		}
		st := statOf(&sst)
		res.st = st
		if err := regular(info.Name, st, dst); err != nil {
			return fail(err)
		}
		size, ino = st.size, st.ino
		res.info.Size = size
		// The header first: the used part is reserved against the byte limit before any
		// buffer is sized for it or the file mapped.
		var hdr [headerSize]byte
		n, err := preadFull(fd, hdr[:], 0)
		if err != nil {
			return fail(fmt.Errorf("%s: %w", info.Name, err))
		}
		used, err := UsedOf(hdr[:n])
		if err != nil {
			return fail(fmt.Errorf("%s: %w", info.Name, err))
		}
		if int64(used) > size {
			return fail(&FileError{FileReasonTruncated, fmt.Errorf("%s: header says %d bytes used, the file has %d", info.Name, used, size)})
		}
		if err := reserve(used); err != nil {
			return fail(err)
		}
		// A file read once to be folded is copied when small (cheaper than mapping it and
		// faulting its pages in), mapped for the read only when large (no heap for it).
		if info.mayMap && size <= 1<<30 && !(info.Folded && used <= foldCopyMax) {
			if m, err := syscall.Mmap(fd, 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED); err == nil {
				data = m
				res.cache = &cached{ino: ino, data: m}
				if r.mappedHook != nil {
					r.mappedHook(info.Name)
				}
			}
		}
		if data == nil {
			data, err = r.pread(fd, size, used, res, reserve)
			if err != nil {
				return fail(fmt.Errorf("%s: %w", info.Name, err))
			}
			res.cache = &cached{ino: ino}
		}
	}
	res.info.Size = size
	used, err := UsedOf(data)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", info.Name, err))
	}
	if int64(used) > size {
		return fail(&FileError{FileReasonTruncated, fmt.Errorf("%s: header says %d bytes used, the file has %d", info.Name, used, size)})
	}
	if int64(used) > int64(len(data)) {
		return fail(&FileError{FileReasonTruncated, fmt.Errorf("%s: shrank while being read", info.Name)})
	}
	if err := reserve(used); err != nil {
		return fail(err)
	}
	data = data[:used]
	var lay *layout
	var prev []*Key // the keys of the file's last read, to tell whether its layout changed
	if c != nil && c.lay != nil && c.lay.ino == ino {
		lay = c.lay
		prev = lay.keys
	}
	if lay != nil && len(lay.offs) != len(lay.keys) {
		lay = nil // its value offsets are a plan's (one that was not kept): parsed afresh
	}
	if lay != nil && lay.used == used && res.cache != nil && res.cache.data != nil && res.cache == c && !sameEnds(data, lay) {
		lay = nil // rewritten in place, not appended to: parsed afresh
	}
	if lay != nil && lay.used == used && res.cache != nil && res.cache.data != nil && res.cache == c {
		// Mapped, same inode (held by the mapping, so never reused), same size and the same
		// first and last keys: the append-only file has the same entries; read the values only.
		res.cache.lay = lay
		res.info.Used, res.info.Generation = used, lay.gen
		if err := r.spend(bud, len(lay.keys)); err != nil {
			return fail(err)
		}
		res.entries = r.values(data, lay, res)
		res.info.Entries = len(res.entries)
		return res
	}
	var gen Generation
	if lay != nil && lay.used == used {
		gen = lay.gen // keys are compared below
	} else {
		used, gen, err = ParseFile(data)
		if err != nil {
			return fail(fmt.Errorf("%s: %w", info.Name, err))
		}
	}
	if lay == nil || lay.gen != gen || lay.used > used {
		lay = &layout{}
	}
	lay.ino, lay.used, lay.gen = ino, used, gen
	res.info.Used, res.info.Generation = used, gen
	entries, err := r.resolveKeys(ctx, data, used, gen, lay, prev, res, bud)
	if err != nil {
		lay.keys, lay.offs, lay.used = nil, nil, 0
		return fail(err)
	}
	res.cache.lay = lay
	res.entries = entries
	res.info.Entries = len(res.entries)
	return res
}

// spend counts n entries against the directory's entry limit.
func (r *Reader) spend(bud *budget, n int) error {
	if bud.entries.Add(int64(n)) > int64(r.opts.MaxEntries) && r.opts.MaxEntries > 0 {
		return bud.fail(fetch.Errorf(fetch.ReasonTooLarge, "over the %d entry limit", r.opts.MaxEntries))
	}
	return nil
}

// entryStart is where entry i of lay begins (its key's length): right after the header, or
// after entry i-1's value (and timestamp).
func (lay *layout) entryStart(i int) int {
	if i == 0 {
		return headerSize
	}
	if lay.gen == GenTimestamp {
		return int(lay.offs[i-1]) + 16
	}
	return int(lay.offs[i-1]) + 8
}

// sameEnds reports whether the first and last entries of data still hold the keys of lay: a
// file the client only appends to always does; one rewritten in place to the same size most
// likely does not. An entry with a bad key (nil in lay) counts as changed.
func sameEnds(data []byte, lay *layout) bool {
	n := len(lay.keys)
	if n == 0 {
		return true
	}
	for _, i := range [2]int{0, n - 1} {
		k := lay.keys[i]
		got, ok := keyAt(data, lay.entryStart(i))
		if k == nil || !ok || string(got) != k.raw {
			return false
		}
	}
	return true
}

// values reads the values of a file whose layout is known.
func (r *Reader) values(data []byte, lay *layout, res *fileResult) []fileEntry {
	entries := r.getEntries(len(lay.keys))
	v2 := lay.gen == GenTimestamp
	for i, k := range lay.keys {
		off := int(lay.offs[i])
		e := fileEntry{key: k, v: math.Float64frombits(binary.LittleEndian.Uint64(data[off:]))}
		if v2 {
			e.ts = math.Float64frombits(binary.LittleEndian.Uint64(data[off+8:]))
		}
		switch k {
		case nil:
			res.bad++
		case longKey:
			res.long++
			e.key = nil
		}
		entries = append(entries, e)
	}
	return entries
}

func (r *Reader) getEntries(n int) []fileEntry {
	if ep, ok := r.entryPool.Get().(*[]fileEntry); ok {
		return (*ep)[:0]
	}
	return make([]fileEntry, 0, min(n, 1<<16))
}

// pread reads the used part of a file that could not be mapped into a pooled buffer; used is
// what the header said (already reserved). A used part grown since is reserved before the
// buffer grows.
func (r *Reader) pread(fd int, size int64, used int, res *fileResult, reserve func(int) error) ([]byte, error) {
	bp := r.getBuf(used)
	res.buf = bp
	buf := *bp
	n, err := preadFull(fd, buf, 0)
	if err != nil {
		return nil, err
	}
	now, err := UsedOf(buf[:n])
	if err != nil || now <= n || int64(now) > size {
		return buf[:n], nil // the caller reports it
	}
	if err := reserve(now); err != nil {
		return nil, err
	}
	if cap(buf) < now {
		nb := make([]byte, now)
		copy(nb, buf[:n])
		buf = nb
		*bp = nb
	}
	buf = buf[:now]
	m, err := preadFull(fd, buf[n:], int64(n))
	if err != nil {
		return nil, err
	}
	if n+m < now {
		return nil, &FileError{FileReasonTruncated, fmt.Errorf("shrank while being read")}
	}
	return buf, nil
}

func preadFull(fd int, b []byte, off int64) (int, error) {
	total := 0
	for total < len(b) {
		n, err := syscall.Pread(fd, b[total:], off+int64(total))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return total, err
		}
		if n == 0 {
			break
		}
		total += n
	}
	return total, nil
}

func (r *Reader) getBuf(n int) *[]byte {
	if bp, ok := r.bufs.Get().(*[]byte); ok && cap(*bp) >= n {
		*bp = (*bp)[:n]
		return bp
	}
	b := make([]byte, n, max(n, firstRead))
	return &b
}

func (r *Reader) release(res *fileResult) {
	if res.buf != nil && cap(*res.buf) <= 16<<20 {
		r.bufs.Put(res.buf)
	}
	if res.entries != nil && cap(res.entries) <= 1<<20 {
		e := res.entries[:0]
		r.entryPool.Put(&e)
	}
	res.buf, res.entries = nil, nil
}
