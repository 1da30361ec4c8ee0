package gunicorn

import (
	"encoding/binary"
	"errors"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchSize is the number of datagrams one recvmmsg system call can return. gunicorn sends
// one line per datagram, so a busy listener otherwise pays a system call and a wake-up per
// line. Each slot holds a whole datagram (maxDatagram), so the buffers take
// batchSize x 64 KiB; the pages a small datagram never reaches are not touched.
const batchSize = 16

// oobSize is the room for one datagram's control messages (the SO_RXQ_OVFL count).
const oobSize = 64

// batchReader receives up to batchSize datagrams per system call (recvmmsg) into buffers
// it keeps: nothing is allocated per datagram. It works on UDP and unix datagram sockets.
type batchReader struct {
	raw  syscall.RawConn
	buf  []byte // batchSize slots of maxDatagram
	oob  []byte // batchSize slots of oobSize
	iovs [batchSize]unix.Iovec
	hdrs [batchSize]unix.Mmsghdr
}

func newBatchReader(conn net.PacketConn) (*batchReader, error) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("the socket gives no file descriptor")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	r := &batchReader{raw: raw, buf: make([]byte, batchSize*maxDatagram), oob: make([]byte, batchSize*oobSize)}
	for i := range r.hdrs {
		r.iovs[i].Base = &r.buf[i*maxDatagram]
		r.iovs[i].SetLen(maxDatagram)
		r.hdrs[i].Hdr.Iov = &r.iovs[i]
		r.hdrs[i].Hdr.SetIovlen(1)
		r.hdrs[i].Hdr.Control = &r.oob[i*oobSize]
	}
	return r, nil
}

// read waits for at least one datagram and receives as many as are queued, up to
// batchSize; it returns how many. It honours the socket's read deadline and ends with
// net.ErrClosed when the socket is closed.
func (r *batchReader) read() (int, error) {
	for i := range r.hdrs {
		// the kernel overwrites these with what it wrote
		r.hdrs[i].Hdr.SetControllen(oobSize)
		r.hdrs[i].Hdr.Flags = 0
		r.hdrs[i].Len = 0
	}
	var n int
	var errno syscall.Errno
	err := r.raw.Read(func(fd uintptr) bool {
		for {
			// MSG_DONTWAIT: it never blocks, so the raw form, without telling the
			// scheduler about a system call, is enough
			got, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), batchSize,
				unix.MSG_DONTWAIT, 0, 0)
			switch e {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false // nothing queued: wait until the socket is readable
			}
			n, errno = int(got), e
			return true
		}
	})
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, errno
	}
	return n, nil
}

// datagram returns the i-th datagram of the last read, and whether the socket cut it short
// (it was longer than maxDatagram).
func (r *batchReader) datagram(i int) (b []byte, truncated bool) {
	h := &r.hdrs[i]
	return r.buf[i*maxDatagram : i*maxDatagram+int(h.Len)], h.Hdr.Flags&unix.MSG_TRUNC != 0
}

// batch makes the n datagrams of the last read a batch, their contents in dgs' storage
// (cut-short ones counted, not kept; the drop count stamped on the last that carries one).
func (r *batchReader) batch(n int, dgs [][]byte) batch {
	b := batch{datagrams: dgs[:0]}
	for i := range n {
		d, truncated := r.datagram(i)
		if truncated {
			b.tooLong++
		} else {
			b.datagrams = append(b.datagrams, d)
		}
		if drops, ok := r.drops(i); ok {
			b.drops, b.stamped = drops, true
		}
	}
	return b
}

// drops returns the SO_RXQ_OVFL count stamped on the i-th datagram of the last read.
func (r *batchReader) drops(i int) (uint32, bool) {
	h := &r.hdrs[i].Hdr
	return datagramDrops(r.oob[i*oobSize : i*oobSize+int(h.Controllen)])
}

// datagramDrops extracts the SO_RXQ_OVFL count from a datagram's control messages,
// allocating nothing.
func datagramDrops(oob []byte) (uint32, bool) {
	for len(oob) >= unix.SizeofCmsghdr {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return 0, false
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SO_RXQ_OVFL && len(data) >= 4 {
			return binary.NativeEndian.Uint32(data), true
		}
		oob = rest
	}
	return 0, false
}
