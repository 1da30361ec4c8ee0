package gunicorn

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// TestPidfileForeignFilesRefused checks that a pidfile that is not a regular file of its
// own (a symbolic link, a FIFO, a device, a directory) is refused without being read, and
// that no byte of a pidfile's content reaches the error, which is logged.
func TestPidfileForeignFilesRefused(t *testing.T) {
	dir := t.TempDir()
	const secret = "root-only-SECRET-token"
	foreign := filepath.Join(dir, "shadow")
	writePidfile(t, foreign, secret+"\n")
	live := filepath.Join(dir, "live.pid")
	writePidfile(t, live, strconv.Itoa(os.Getpid())+"\n")
	fifo := filepath.Join(dir, "fifo.pid")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := func(name, target string) string {
		p := filepath.Join(dir, name)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		path, reason, want string
	}{
		{link("to-secret.pid", foreign), fetch.ReasonPermission, "is a symbolic link: not followed (gunicorn writes a regular file)"},
		// Even a link to a good pidfile: gunicorn never writes one.
		{link("to-live.pid", live), fetch.ReasonPermission, "is a symbolic link: not followed (gunicorn writes a regular file)"},
		{fifo, fetch.ReasonPermission, "is not a regular file (FIFO): not read"},
		{dir, fetch.ReasonPermission, "is not a regular file (directory): not read"},
		{"/dev/null", fetch.ReasonPermission, "is not a regular file (character device): not read"},
		{foreign, fetch.ReasonDecode, "does not hold a pid (23 bytes that are not a decimal number from 1 to 4194304)"},
	}
	r, _ := NewProcReader("")
	for _, c := range cases {
		done := make(chan error, 1)
		go func() { _, _, err := r.ReadPidfile(c.path); done <- err }()
		var err error
		select {
		case err = <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the read of the pidfile blocks", c.path)
		}
		want := "pidfile " + c.path + " " + c.want
		if err == nil || err.Error() != want || fetch.ReasonOf(err) != c.reason {
			t.Errorf("%s: error %v (reason %q), want %q (reason %q)", c.path, err, fetch.ReasonOf(err), want, c.reason)
		}
		if err != nil && strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s: the error shows the file's content: %v", c.path, err)
		}
	}
}

// TestPidfileUSR2LinkIgnored checks that a "<pidfile>.2" link to another pidfile naming a
// live gunicorn is not followed: the pidfile itself is used.
func TestPidfileUSR2LinkIgnored(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "g.pid")
	writePidfile(t, pidfile, "4194303\n")
	other := filepath.Join(dir, "other.pid")
	writePidfile(t, other, strconv.Itoa(os.Getpid())) // the test binary counts as gunicorn
	if err := os.Symlink(other, pidfile+".2"); err != nil {
		t.Fatal(err)
	}
	r, _ := NewProcReader("")
	pid, used, err := r.ReadPidfile(pidfile)
	if err != nil || pid != 4194303 || used != pidfile {
		t.Fatalf("got pid %d from %s (%v), want 4194303 from %s", pid, used, err, pidfile)
	}
	if _, err := r.Read(context.Background(), pidfile); fetch.ReasonOf(err) != fetch.ReasonNotFound {
		t.Fatalf("read: %v, want not_found", err)
	}
}
