package uwsgi

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// Credentials in an http(s) stats address would end up in the stats_uri label, the logs and
// the landing page: they are refused, and the error does not repeat the password.
func TestParseAddressRefusesCredentials(t *testing.T) {
	for _, in := range []string{"http://admin:hunter2@127.0.0.1:1717/", "https://admin:hunter2@stats.example/", "http://admin@127.0.0.1:1717/"} {
		_, err := ParseAddress(in)
		if err == nil {
			t.Fatalf("ParseAddress(%q) accepted credentials", in)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("the error repeats the password: %v", err)
		}
	}
}

// A file:// address that names a FIFO must not block the scrape waiting for a writer.
func TestFileTransportFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "stats.json")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := fetchReason(t, "file://"+p, 0, time.Minute)
		done <- err
	}()
	select {
	case err := <-done:
		wantReason(t, err, fetch.ReasonOther)
		if !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("error %q does not say why", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("reading a FIFO blocked")
	}
}

func TestDialErrorReasons(t *testing.T) {
	eacces := &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.EACCES)}
	wantReason(t, dialError("unix", "/run/uwsgi.sock", eacces), fetch.ReasonPermission)
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	wantReason(t, dialError("tcp", "127.0.0.1:1", refused), fetch.ReasonConnect)
}
