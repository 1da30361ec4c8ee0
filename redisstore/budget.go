package redisstore

import (
	"fmt"
	"net"
	"sync/atomic"
	"syscall"
)

// budget counts the bytes read from a store's connections during one read and fails the
// read once they pass the limit: every reply is counted as it arrives, so one huge value
// cannot be read into memory in full before the limit is checked.
type budget struct {
	limit atomic.Int64 // 0: no limit
	used  atomic.Int64
}

// errTooLarge ends a read that passed the byte limit. It is no network error, so the client
// does not retry on it; the connection it came from is closed.
type errTooLarge struct{ limit int64 }

func (e *errTooLarge) Error() string {
	return fmt.Sprintf("the replies of one read passed the %d byte limit", e.limit)
}

func (b *budget) reset(limit int64) {
	b.limit.Store(limit)
	b.used.Store(0)
}

func (b *budget) take(n int) error {
	used := b.used.Add(int64(n))
	if l := b.limit.Load(); l > 0 && used > l {
		return &errTooLarge{limit: l}
	}
	return nil
}

type countedConn struct {
	net.Conn
	b *budget
}

// room is how many bytes one read may ask for: what is left of the limit, and one more so
// that passing it is seen; all of p without a limit.
func (b *budget) room(n int) int {
	l := b.limit.Load()
	if l <= 0 {
		return n
	}
	return int(min(int64(n), max(l-b.used.Load(), 0)+1))
}

func (c *countedConn) Read(p []byte) (int, error) {
	// A reply's large value is read straight into its buffer (bufio passes big reads through),
	// and one read returns what the socket holds, megabytes with a large receive buffer: ask for
	// no more than the budget allows.
	n, err := c.Conn.Read(p[:c.b.room(len(p))])
	if n > 0 {
		if berr := c.b.take(n); berr != nil {
			return n, berr
		}
	}
	return n, err
}

type sysConn interface {
	SyscallConn() (syscall.RawConn, error)
}

// countedSysConn keeps the plain connection's SyscallConn visible to the pool's health check.
type countedSysConn struct {
	countedConn
	sc sysConn
}

func (c *countedSysConn) SyscallConn() (syscall.RawConn, error) { return c.sc.SyscallConn() }
