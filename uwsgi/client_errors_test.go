package uwsgi

import (
	"net"
	"os"
	"path/filepath"
	"runtime"
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

// A file:// stats document larger than the cap fails with too_large from its size alone,
// before any of it is read.
func TestFileTransportTooLargeBySize(t *testing.T) {
	p := filepath.Join(t.TempDir(), "stats.json")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(DefaultMaxResponseSize + 1); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	f.Close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = fetchReason(t, "file://"+p, 0, time.Minute)
	runtime.ReadMemStats(&after)
	wantReason(t, err, fetch.ReasonTooLarge)
	want := p + " holds 33554433 bytes, over the 33554432 byte limit"
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
	// Reading the cap first would allocate at least 32 MiB.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Fatalf("%d bytes allocated: the file was read", alloc)
	}
}
