package gunicorn

import (
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel counts, per socket, the datagrams it dropped because the socket's receive
// buffer was full (sk_drops). The exporter learns that count two ways: stamped on every
// datagram received (SO_RXQ_OVFL), and read from the socket at every scrape (SO_MEMINFO), so
// that drops after the last datagram received are reported too.

// socketDrops carries the count across sockets (a listener binds again after an error) and
// across wraps of the kernel's 32-bit counter.
type socketDrops struct {
	base uint64 // what earlier sockets counted
	cur  uint64 // the current socket's count, unwrapped
	// read returns the current socket's count now; nil when there is no socket or the
	// kernel cannot tell.
	read func() (uint32, bool)
}

// set records a reading of the current socket's 32-bit count. Readings from a datagram's
// stamp and from a scrape can arrive out of order (a datagram queued before a drop is
// handled after a scrape read the count), and the counter wraps: as in serial number
// arithmetic (RFC 1982), a reading up to 2^31 ahead of the last one is newer (across a wrap
// too), anything else is an older reading and ignored.
func (d *socketDrops) set(n uint32) {
	if delta := int32(n - uint32(d.cur)); delta > 0 {
		d.cur += uint64(delta)
	}
}

func (d *socketDrops) total() uint64 { return d.base + d.cur }

// NewSocket starts counting socket drops of a new socket from 0 without losing the past.
func (s *StatsdState) NewSocket() { s.AttachSocket(nil) }

// AttachSocket starts counting the drops of a new socket from 0 without losing the past;
// read (nil if none) tells the socket's count at any time, for Snapshot.
func (s *StatsdState) AttachSocket(read func() (uint32, bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drops.base += s.drops.cur
	s.drops.cur = 0
	s.drops.read = read
}

// DetachSocket reads the socket's count a last time and stops reading it: it is closing.
func (s *StatsdState) DetachSocket() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshDrops()
	s.drops.read = nil
}

// refreshDrops reads the current socket's count; s.mu is held (a getsockopt: microseconds).
func (s *StatsdState) refreshDrops() {
	if s.drops.read == nil {
		return
	}
	if n, ok := s.drops.read(); ok {
		s.drops.set(n)
	}
}

// enableDropCount asks the kernel to attach to every datagram the number of datagrams this
// socket dropped so far because its receive buffer was full (SO_RXQ_OVFL).
func enableDropCount(conn net.PacketConn) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RXQ_OVFL, 1)
	})
}

// kernelDrops returns a reader of the socket's drop count now, from
// getsockopt(SOL_SOCKET, SO_MEMINFO) (Linux 4.6+; the drops field since 4.14). It works for
// UDP and unix datagram sockets alike, unlike the "drops" column of /proc/net/udp.
func kernelDrops(conn net.PacketConn) func() (uint32, bool) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return func() (uint32, bool) {
		var info [unix.SK_MEMINFO_VARS]uint32
		size := uint32(unsafe.Sizeof(info))
		var errno syscall.Errno
		err := raw.Control(func(fd uintptr) {
			_, _, errno = unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_MEMINFO,
				uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&size)), 0)
		})
		if err != nil || errno != 0 || size <= unix.SK_MEMINFO_DROPS*4 {
			return 0, false
		}
		return info[unix.SK_MEMINFO_DROPS], true
	}
}
