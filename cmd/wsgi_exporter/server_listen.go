package main

import (
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/mdlayher/vsock"
	"github.com/prometheus/exporter-toolkit/web"
)

// listen opens the listeners exporter-toolkit's web.ListenAndServe would (systemd socket
// activation, vsock://:PORT, or TCP addresses) and makes them share one connection limit.
// exporter-toolkit takes an *http.Server but builds its listeners itself, with no limit; its
// web.ServeMultiple serves listeners given to it, with the same TLS and authentication.
func listen(flags *web.FlagConfig, maxConns int) ([]net.Listener, error) {
	var ls []net.Listener
	if flags.WebSystemdSocket != nil && *flags.WebSystemdSocket {
		acts, err := activation.Listeners()
		if err != nil {
			return nil, err
		}
		for _, l := range acts {
			if l != nil {
				ls = append(ls, l)
			}
		}
		if len(ls) == 0 {
			return nil, errors.New("no socket activation file descriptors found")
		}
	} else {
		if flags.WebListenAddresses == nil || len(*flags.WebListenAddresses) == 0 {
			return nil, web.ErrNoListeners
		}
		for _, addr := range *flags.WebListenAddresses {
			l, err := listenOne(addr)
			if err != nil {
				for _, o := range ls {
					o.Close()
				}
				return nil, err
			}
			ls = append(ls, l)
		}
	}
	sem := make(chan struct{}, maxConns)
	for i, l := range ls {
		ls[i] = &limitListener{Listener: l, sem: sem, done: make(chan struct{})}
	}
	return ls, nil
}

func listenOne(addr string) (net.Listener, error) {
	if !strings.HasPrefix(addr, "vsock://") {
		return net.Listen("tcp", addr)
	}
	u, err := url.Parse(addr)
	if err != nil {
		return nil, err
	}
	_, p, err := net.SplitHostPort(u.Host)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(p, 10, 32)
	if err != nil {
		return nil, err
	}
	return vsock.Listen(uint32(port), nil)
}

// limitListener accepts a connection only while fewer than cap(sem) connections of every
// listener sharing sem are open. Otherwise Accept waits: new clients wait in the kernel's
// listen queue (their handshake done, no file descriptor of ours used) until a connection
// closes, e.g. an idle one at the server's IdleTimeout. A listener takes its place before it
// waits in Accept, so no connection is ever open beyond the limit; with several listeners,
// each idle one holds a place (one serves at most limit - (listeners - 1)).
type limitListener struct {
	net.Listener
	sem       chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, sem: l.sem}, nil
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitConn gives its place back once, when closed.
type limitConn struct {
	net.Conn
	sem  chan struct{}
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { <-c.sem })
	return err
}
