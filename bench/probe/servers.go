package main

import (
	"bytes"
	"net"
	"sync"
)

// statsServer is a fake uWSGI stats server: it writes its document to every connection and
// closes it, as uWSGI's stats server does (live); accepts and never writes (hung); or is a
// closed port or socket (dead).
type statsServer struct {
	kind    string // live, hung, dead
	addr    string // the probe target: host:port or unix:///path
	version string // live: the version its document reports
	l       net.Listener
	mu      sync.Mutex
	held    []net.Conn
}

// serveLive serves doc with its version replaced by version on l.
func serveLive(l net.Listener, doc []byte, version string) *statsServer {
	doc = bytes.Replace(doc, []byte(`"2.0.21-debian"`), []byte(`"`+version+`"`), 1)
	s := &statsServer{kind: "live", version: version, l: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = c.Write(doc)
			}()
		}
	}()
	return s
}

// serveHung accepts connections on l and holds them open without a byte.
func serveHung(l net.Listener) *statsServer {
	s := &statsServer{kind: "hung", l: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.held = append(s.held, c)
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *statsServer) close() {
	if s.l != nil {
		s.l.Close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.held {
		c.Close()
	}
	s.held = nil
}

// deadTCP returns a loopback address nobody listens on (a port the kernel gave, then freed).
func deadTCP() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	l.Close()
	return addr, nil
}
