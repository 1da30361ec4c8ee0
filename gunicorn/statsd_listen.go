package gunicorn

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// maxDatagram is the read buffer: the largest UDP payload fits; a longer unix datagram is
// dropped as too_long.
const maxDatagram = 65536

// ParseListenAddress splits a statsd listen address: "host:port" is UDP; "unix:PATH",
// "unixgram:PATH" or an absolute path is a unix datagram socket.
func ParseListenAddress(s string) (network, address string, err error) {
	switch {
	case strings.HasPrefix(s, "unixgram:"):
		network, address = "unixgram", strings.TrimPrefix(s, "unixgram:")
	case strings.HasPrefix(s, "unix:"):
		network, address = "unixgram", strings.TrimPrefix(s, "unix:")
	case strings.HasPrefix(s, "/"):
		network, address = "unixgram", s
	default:
		if _, _, err := net.SplitHostPort(s); err != nil {
			return "", "", fmt.Errorf("statsd listen address %q: want host:port (UDP) or a unix socket path: %w", s, err)
		}
		return "udp", s, nil
	}
	address = strings.TrimPrefix(address, "//")
	if address == "" || !strings.HasPrefix(address, "/") {
		return "", "", fmt.Errorf("statsd listen address %q: the unix socket path must be absolute", s)
	}
	return network, address, nil
}

// StatsdListener receives statsd datagrams into a StatsdState.
type StatsdListener struct {
	Network, Address string
	State            *StatsdState
	// RetryInterval is the wait before binding again after a failure.
	RetryInterval time.Duration

	mu      sync.Mutex
	bound   net.Addr
	lastErr error
	ready   chan struct{}
	once    sync.Once
}

// NewStatsdListener returns a listener for a ParseListenAddress address.
func NewStatsdListener(listenAddress string, state *StatsdState) (*StatsdListener, error) {
	network, addr, err := ParseListenAddress(listenAddress)
	if err != nil {
		return nil, err
	}
	return &StatsdListener{Network: network, Address: addr, State: state, RetryInterval: 5 * time.Second,
		ready: make(chan struct{}), lastErr: errors.New("not listening yet")}, nil
}

// Bound returns the bound address, or nil and why it is not bound.
func (l *StatsdListener) Bound() (net.Addr, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bound != nil {
		return l.bound, nil
	}
	return nil, l.lastErr
}

// Ready is closed after the first bind attempt, successful or not.
func (l *StatsdListener) Ready() <-chan struct{} { return l.ready }

func (l *StatsdListener) setState(a net.Addr, err error) {
	l.mu.Lock()
	l.bound, l.lastErr = a, err
	l.mu.Unlock()
	l.once.Do(func() { close(l.ready) })
}

// Run binds and reads datagrams until ctx ends. A failed bind is retried.
func (l *StatsdListener) Run(ctx context.Context) error {
	for {
		conn, err := l.listen()
		if err != nil {
			l.setState(nil, err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(l.RetryInterval):
				continue
			}
		}
		l.State.AttachSocket(kernelDrops(conn))
		l.setState(conn.LocalAddr(), nil)
		err = l.serve(ctx, conn)
		if ctx.Err() != nil {
			l.setState(nil, errors.New("stopped"))
			return nil
		}
		l.setState(nil, fmt.Errorf("receiving: %w", err))
	}
}

func (l *StatsdListener) listen() (net.PacketConn, error) {
	if l.Network == "unixgram" {
		// A socket left by an earlier run would make the bind fail; anything else is kept.
		if fi, err := os.Lstat(l.Address); err == nil && fi.Mode()&fs.ModeSocket != 0 {
			_ = os.Remove(l.Address)
		}
	}
	conn, err := net.ListenPacket(l.Network, l.Address)
	if err != nil {
		return nil, err
	}
	if c, ok := conn.(interface{ SetReadBuffer(int) error }); ok {
		_ = c.SetReadBuffer(readBuffer) // absorb bursts; the kernel caps it at net.core.rmem_max
	}
	enableDropCount(conn)
	return conn, nil
}

// readBuffer is the socket receive buffer asked for.
const readBuffer = 4 << 20

func (l *StatsdListener) serve(ctx context.Context, conn net.PacketConn) error {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	defer l.State.DetachSocket() // first: the last count is read while the socket is open
	if l.Network == "unixgram" {
		defer os.Remove(l.Address)
	}
	r, err := newBatchReader(conn)
	if err != nil {
		return err
	}
	var dgs [batchSize][]byte
	for {
		n, err := r.read()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return err
			}
			var errno syscall.Errno
			if errors.As(err, &errno) && errno.Temporary() {
				continue
			}
			return err
		}
		l.State.handleBatch(r.batch(n, dgs[:]))
	}
}
