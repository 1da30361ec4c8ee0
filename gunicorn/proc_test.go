package gunicorn

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// fakeWorker starts a child of the test process holding an fd to an unlinked
// "wgunicorn-*" file, like a gunicorn worker; it returns the child and the file's ctime.
func fakeWorker(t testing.TB, dir string, mtime *time.Time) (*exec.Cmd, time.Time) {
	t.Helper()
	f, err := os.CreateTemp(dir, "wgunicorn-")
	if err != nil {
		t.Fatal(err)
	}
	if mtime != nil {
		if err := os.Chtimes(f.Name(), *mtime, *mtime); err != nil {
			t.Fatal(err)
		}
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(f.Name()); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "60")
	cmd.ExtraFiles = []*os.File{f}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitSleeping(t, cmd.Process.Pid)
	return cmd, time.Unix(int64(st.Ctim.Sec), int64(st.Ctim.Nsec))
}

// waitSleeping waits until pid has finished starting and sleeps (state S), so that its
// memory figures are settled.
func waitSleeping(t testing.TB, pid int) {
	t.Helper()
	for i := 0; i < 500; i++ {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err == nil {
			if j := bytes.LastIndexByte(b, ')'); j >= 0 && len(b) > j+2 && b[j+2] == 'S' {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("process %d never went to sleep", pid)
}

func writePidfile(t testing.TB, path string, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The test binary (gunicorn.test) plays the master: its command line names gunicorn.
func TestProcReadMasterAndWorkers(t *testing.T) {
	dir := t.TempDir()
	w1, ctime1 := fakeWorker(t, dir, nil)
	mono := time.Unix(1000, 500_000_000) // a CLOCK_MONOTONIC stamp, as gunicorn 22+ writes
	w2, _ := fakeWorker(t, dir, &mono)
	pidfile := filepath.Join(dir, "g.pid")
	writePidfile(t, pidfile, strconv.Itoa(os.Getpid())+"\n")

	r, err := NewProcReader("")
	if err != nil {
		t.Fatal(err)
	}
	r.Now = func() time.Time { return ctime1.Add(7 * time.Second) }
	r.Monotonic = func() (float64, error) { return 1003, nil }
	m, err := r.Read(context.Background(), pidfile)
	if err != nil {
		t.Fatal(err)
	}
	if m.PID != os.Getpid() || m.Pidfile != pidfile {
		t.Fatalf("master pid %d from %s, want %d from %s", m.PID, m.Pidfile, os.Getpid(), pidfile)
	}
	if len(m.Workers) != 2 {
		t.Fatalf("found %d workers, want 2: %+v", len(m.Workers), m.Workers)
	}
	byPID := map[int]Worker{}
	for _, w := range m.Workers {
		byPID[w.PID] = w
	}
	a, b := byPID[w1.Process.Pid], byPID[w2.Process.Pid]
	if !a.HasHeartbeat || a.HeartbeatAge < 6.99 || a.HeartbeatAge > 7.01 {
		t.Errorf("ctime heartbeat: has=%v age=%v, want 7", a.HasHeartbeat, a.HeartbeatAge)
	}
	if !b.HasHeartbeat || b.HeartbeatAge != 2.5 {
		t.Errorf("monotonic heartbeat: has=%v age=%v, want 2.5", b.HasHeartbeat, b.HeartbeatAge)
	}
	for _, w := range m.Workers {
		if w.RSSBytes <= 0 || !w.HasPSS || w.PSSBytes <= 0 || w.PSSBytes > w.RSSBytes {
			t.Errorf("worker %d memory: rss %v pss %v (has %v)", w.PID, w.RSSBytes, w.PSSBytes, w.HasPSS)
		}
		if age := float64(time.Now().Unix()) - w.StartTime; age < -1 || age > 60 {
			t.Errorf("worker %d start time %v is %v s from now", w.PID, w.StartTime, age)
		}
	}
	if age := float64(time.Now().Unix()) - m.StartTime; age < -1 || age > 3600 {
		t.Errorf("master start time %v is %v s from now", m.StartTime, age)
	}
}

func TestProcUSR2PidfileWins(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "g.pid")
	old := exec.Command("sleep", "60")
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = old.Process.Kill(); _ = old.Wait() })
	writePidfile(t, pidfile, strconv.Itoa(old.Process.Pid))
	writePidfile(t, pidfile+".2", strconv.Itoa(os.Getpid()))
	r, _ := NewProcReader("")
	pid, used, err := r.ReadPidfile(pidfile)
	if err != nil || pid != os.Getpid() || used != pidfile+".2" {
		t.Fatalf("got %d %s %v, want %d from the .2 file", pid, used, err, os.Getpid())
	}
	// A stale .2 (pid gone, or reused by another program) is ignored.
	for _, stale := range []string{"4194303", strconv.Itoa(old.Process.Pid)} {
		writePidfile(t, pidfile+".2", stale)
		pid, used, err = r.ReadPidfile(pidfile)
		if err != nil || pid != old.Process.Pid || used != pidfile {
			t.Fatalf(".2 holding %s: got %d %s %v, want %d from the pidfile", stale, pid, used, err, old.Process.Pid)
		}
	}
}

func TestProcBadPidfiles(t *testing.T) {
	dir := t.TempDir()
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })
	r, _ := NewProcReader("")
	cases := []struct {
		name, content, reason string
	}{
		{"missing", "", fetch.ReasonNotFound},
		{"empty", "\n", fetch.ReasonDecode},
		{"garbage", "abc\n", fetch.ReasonDecode},
		{"negative", "-5", fetch.ReasonDecode},
		{"huge", "99999999999999999999", fetch.ReasonDecode},
		{"long", string(make([]byte, 1000)), fetch.ReasonTooLarge},
		{"gone", "4194303\n", fetch.ReasonNotFound},
		{"not gunicorn", strconv.Itoa(sleeper.Process.Pid), fetch.ReasonNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, "p-"+c.name)
			if c.name != "missing" {
				writePidfile(t, path, c.content)
			}
			_, err := r.Read(context.Background(), path)
			if err == nil {
				t.Fatal("no error")
			}
			if got := fetch.ReasonOf(err); got != c.reason {
				t.Fatalf("reason %q, want %q (err: %v)", got, c.reason, err)
			}
		})
	}
	if os.Geteuid() != 0 {
		path := filepath.Join(dir, "unreadable")
		writePidfile(t, path, "1")
		_ = os.Chmod(path, 0)
		if _, err := r.Read(context.Background(), path); fetch.ReasonOf(err) != fetch.ReasonPermission {
			t.Fatalf("unreadable pidfile: %v", err)
		}
	}
}

func TestIsHeartbeatTarget(t *testing.T) {
	for target, want := range map[string]bool{
		"/tmp/wgunicorn-abc123 (deleted)":      true,
		"/dev/shm/wgunicorn-x_y (deleted)":     true,
		"/tmp/wgunicorn-abc123":                false,
		"/tmp/other (deleted)":                 false,
		"socket:[12345]":                       false,
		"/tmp/dir/wgunicorn-/x (deleted)":      false,
		"/var/lib/wgunicorn-q (deleted)":       true,
		"anon_inode:[eventpoll]":               false,
		"/tmp/wgunicorn-a (deleted) (deleted)": true,
	} {
		if got := IsHeartbeatTarget(target); got != want {
			t.Errorf("IsHeartbeatTarget(%q) = %v, want %v", target, got, want)
		}
	}
}

func FuzzParsePid(f *testing.F) {
	for _, s := range []string{"123\n", "", "abc", " 42 ", "-1", "4194304", "0x10"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pid, err := parsePid("x", b)
		if err == nil && (pid <= 0 || pid > 1<<22) {
			t.Fatalf("accepted pid %d from %q", pid, b)
		}
		// The error is logged: it tells the length, never the content.
		want := "pidfile x does not hold a pid (" + strconv.Itoa(len(b)) + " bytes that are not a decimal number from 1 to 4194304)"
		if err != nil && err.Error() != want {
			t.Fatalf("error %q for %q, want %q", err, b, want)
		}
	})
}

// TestProcNotGunicornHidesCmdline checks that a stale pidfile naming another program is
// reported by the program's short name (/proc/<pid>/comm), never by its command line,
// which can hold secrets and the error is logged.
func TestProcNotGunicornHidesCmdline(t *testing.T) {
	sleepPath, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal("sleep (coreutils) is needed:", err)
	}
	// argv[0] is free text that shows in /proc/<pid>/cmdline but not in comm, which the
	// kernel sets from the executable's file name.
	cmd := &exec.Cmd{Path: sleepPath, Args: []string{"mysqld --password=SECRET", "60"}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pid := cmd.Process.Pid
	waitSleeping(t, pid) // past exec: the new command line is in place
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || !bytes.Contains(raw, []byte("SECRET")) {
		t.Fatalf("cmdline of the child %q (%v) does not hold the secret", raw, err)
	}
	pidfile := filepath.Join(t.TempDir(), "gunicorn.pid")
	writePidfile(t, pidfile, strconv.Itoa(pid)+"\n")
	r, _ := NewProcReader("")
	_, err = r.Read(context.Background(), pidfile)
	if err == nil {
		t.Fatal("no error")
	}
	if got := fetch.ReasonOf(err); got != fetch.ReasonNotFound {
		t.Fatalf("reason %q, want %q (err: %v)", got, fetch.ReasonNotFound, err)
	}
	want := "stale pidfile " + pidfile + ": pid " + strconv.Itoa(pid) + ` is not gunicorn (comm "sleep")`
	if msg := err.Error(); msg != want || bytes.Contains([]byte(msg), []byte("SECRET")) {
		t.Fatalf("error %q, want %q", msg, want)
	}
}
