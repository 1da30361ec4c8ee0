package nginx

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// fullBacklogSocket listens on a unix socket with a backlog of 0 that is never accepted
// from, and fills its queue: the next connect fails at once with EAGAIN (Linux answers a
// non-blocking connect to a full unix listener so).
func fullBacklogSocket(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "status.sock")
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: sock}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	for range 64 {
		c, err := net.Dial("unix", sock)
		if err == nil {
			t.Cleanup(func() { c.Close() })
			continue
		}
		if !errors.Is(err, syscall.EAGAIN) {
			t.Fatalf("filling the backlog: %v, want EAGAIN", err)
		}
		return sock
	}
	t.Fatal("the listen backlog never filled (connect never said EAGAIN)")
	return "" // not reached
}

// TestFetchUnixBacklogFull: a unix socket whose listen backlog is full refuses the connect
// at once with EAGAIN, which Go's error calls a timeout. No deadline passed: the scrape
// failed to connect.
func TestFetchUnixBacklogFull(t *testing.T) {
	sock := fullBacklogSocket(t)
	_, err := fetchTimeout(realClient(t, "unix://"+sock+"?path=/stub_status", Options{}), time.Minute)
	wantReason(t, err, fetch.ReasonConnect, "resource temporarily unavailable")
}

// TestRequestErrorDialEAGAIN classifies the dial error of a full unix listener backlog
// without the listener, as Go reports it.
func TestRequestErrorDialEAGAIN(t *testing.T) {
	target, err := ParseAddress("unix:///run/nginx/status.sock?path=/stub_status")
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(target, Options{})
	defer c.Close()
	dialErr := &net.OpError{
		Op:   "dial",
		Net:  "unix",
		Addr: &net.UnixAddr{Name: "/run/nginx/status.sock", Net: "unix"},
		Err:  os.NewSyscallError("connect", syscall.EAGAIN),
	}
	var ne net.Error
	if !errors.As(dialErr, &ne) || !ne.Timeout() {
		t.Fatal("Go no longer calls EAGAIN a timeout: the case this test guards is gone")
	}
	// http.Client.Do wraps the dial error in a *url.Error.
	urlErr := &url.Error{Op: "Get", URL: "http://unix/stub_status", Err: dialErr}
	err = fetch.RequestError(context.Background(), urlErr, target.String())
	wantReason(t, err, fetch.ReasonConnect, "connect: resource temporarily unavailable")
	// A deadline that passed is still a timeout.
	ctx, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel()
	err = fetch.RequestError(ctx, urlErr, target.String())
	wantReason(t, err, fetch.ReasonTimeout, "context deadline exceeded")
	// So is a dial that hit its own deadline (os.ErrDeadlineExceeded) before the context.
	dlErr := &net.OpError{Op: "dial", Net: "unix", Err: os.ErrDeadlineExceeded}
	err = fetch.RequestError(context.Background(), &url.Error{Op: "Get", URL: "http://unix/stub_status", Err: dlErr}, target.String())
	wantReason(t, err, fetch.ReasonTimeout, "i/o timeout")
}
