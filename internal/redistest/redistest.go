// Package redistest starts a real redis-server (Debian's) for tests: on 127.0.0.1 with an
// ephemeral port and on a unix socket, with a password, without persistence. Each server is
// the test's own and is stopped by its pid; a missing redis-server fails the test.
package redistest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Binary is the server the tests run.
const Binary = "redis-server"

// Password is the requirepass of every test server.
const Password = "test-secret-Zq8"

// Options add to a server's configuration.
type Options struct {
	// TLS serves TLS on the TCP port (and plain text on the socket): PEM files.
	TLSCert, TLSKey, TLSCA string
	// Args are more configuration, as command-line options ("--maxmemory", "1mb").
	Args []string
}

// Server is a running redis-server.
type Server struct {
	Port   int
	Socket string
	Dir    string
	opts   Options
	t      testing.TB

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  *syncBuffer
}

// syncBuffer keeps what the server prints; the process writes while tests read.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b.Len() < 1<<16 {
		b.b.Write(p)
	}
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Start starts a server; it is stopped when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if _, err := exec.LookPath(Binary); err != nil {
		t.Fatalf("%s is required and is not installed (run scripts/install-test-deps.sh as root): %v", Binary, err)
	}
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Dir: dir, Socket: filepath.Join(dir, "redis.sock"), opts: opts, t: t}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("redis-server log:\n%s", s.log())
		}
		os.RemoveAll(dir)
	})
	var last error
	for range 5 {
		s.Port = freePort(t)
		if last = s.start(); last == nil {
			return s
		}
	}
	t.Fatalf("starting redis-server: %v\n%s", last, s.log())
	return nil
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (s *Server) args() []string {
	a := []string{
		"--bind", "127.0.0.1", "--unixsocket", s.Socket, "--unixsocketperm", "700",
		"--requirepass", Password, "--save", "", "--appendonly", "no", "--dir", s.Dir,
		"--daemonize", "no", "--logfile", filepath.Join(s.Dir, "redis.log"),
	}
	port := strconv.Itoa(s.Port)
	if s.opts.TLSCert != "" {
		a = append(a, "--port", "0", "--tls-port", port, "--tls-cert-file", s.opts.TLSCert,
			"--tls-key-file", s.opts.TLSKey, "--tls-ca-cert-file", s.opts.TLSCA, "--tls-auth-clients", "optional")
	} else {
		a = append(a, "--port", port)
	}
	return append(a, s.opts.Args...)
}

// start runs the server and waits until it answers on the socket.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.out = &syncBuffer{}
	cmd := exec.Command(Binary, s.args()...)
	cmd.Stdout, cmd.Stderr = s.out, s.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	c := redis.NewClient(&redis.Options{Network: "unix", Addr: s.Socket, Password: Password, Protocol: 2, MaxRetries: -1, DisableIdentity: true})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("redis-server exited at start")
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil && s.tcpListening() {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.stopLocked()
	return fmt.Errorf("redis-server did not answer within 10s")
}

func (s *Server) tcpListening() bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Stop stops the server (SIGTERM to its pid, SIGKILL after 5 s) and waits for it.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

func (s *Server) stopLocked() {
	if s.cmd == nil {
		return
	}
	select {
	case <-s.done:
	default:
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	s.cmd = nil
}

// Restart starts the stopped server again on the same port and socket, empty.
func (s *Server) Restart() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("restarting redis-server: %v\n%s", err, s.log())
	}
}

// PID is the server's process id (0 when stopped).
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

func (s *Server) log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
	s.mu.Lock()
	out := s.out
	s.mu.Unlock()
	if out != nil {
		b = append(b, out.String()...)
	}
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return string(b)
}

// URL is the server's TCP URL for database db, without credentials.
func (s *Server) URL(db int) string {
	scheme := "redis"
	if s.opts.TLSCert != "" {
		scheme = "rediss"
	}
	return fmt.Sprintf("%s://127.0.0.1:%d/%d", scheme, s.Port, db)
}

// UnixURL is the server's socket URL for database db.
func (s *Server) UnixURL(db int) string {
	return fmt.Sprintf("unix://%s?db=%d", s.Socket, db)
}

// Client is a client of database db over the socket, closed when the test ends.
func (s *Server) Client(db int) *redis.Client {
	c := redis.NewClient(&redis.Options{Network: "unix", Addr: s.Socket, Password: Password, DB: db, Protocol: 2, DisableIdentity: true})
	s.t.Cleanup(func() { c.Close() })
	return c
}
