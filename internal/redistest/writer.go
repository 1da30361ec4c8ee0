package redistest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// Python runs the test writer with Debian's python3-redis and python3-prometheus-client.
const Python = "/usr/bin/python3"

// Writer is one process of redisstore/testdata/gpe_writer.py: a worker of
// gunicorn-prometheus-exporter's Redis layout, driven a command a line (see the script).
type Writer struct {
	// PID is the writer's process id, as its keys name it.
	PID string

	t   testing.TB
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
	err *bytes.Buffer
}

// pythonCheck imports what the writer needs, once per test binary (not once per writer).
var pythonCheck = sync.OnceValues(func() ([]byte, error) {
	return exec.Command(Python, "-c", "import redis, prometheus_client").CombinedOutput()
})

// RequirePython fails the test when Debian's python3 lacks redis or prometheus_client.
func RequirePython(t testing.TB) {
	t.Helper()
	out, err := pythonCheck()
	if err != nil {
		t.Fatalf("%s with python3-redis and python3-prometheus-client is required (run scripts/install-test-deps.sh as root): %v\n%s", Python, err, out)
	}
}

// StartWriter starts script (the path of gpe_writer.py) against srv's database 0 over its
// unix socket, with the password in pwFile and more arguments of the script. The process is
// the test's own: it is killed by its pid at the end of the test if still running.
func StartWriter(t testing.TB, srv *Server, script, pwFile string, args ...string) *Writer {
	t.Helper()
	RequirePython(t)
	args = append([]string{script, "--socket", srv.Socket, "--password-file", pwFile}, args...)
	w := &Writer{t: t, cmd: exec.Command(Python, args...), err: &bytes.Buffer{}}
	w.cmd.Stderr = w.err
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var err error
	if w.in, err = w.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := w.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	w.out = bufio.NewReader(stdout)
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if w.cmd.ProcessState == nil {
			_ = w.cmd.Process.Kill()
			_ = w.cmd.Wait()
		}
	})
	w.PID = w.Do("pid")
	return w
}

// Do sends a command and returns the answer; an answer other than "ok" (or the pid, for
// "pid") fails the test.
func (w *Writer) Do(cmd string) string {
	w.t.Helper()
	if _, err := fmt.Fprintln(w.in, cmd); err != nil {
		w.t.Fatalf("writer %s: %v\n%s", cmd, err, w.err)
	}
	line, err := w.out.ReadString('\n')
	if err != nil {
		w.t.Fatalf("writer %s: %v\n%s", cmd, err, w.err)
	}
	line = strings.TrimSuffix(line, "\n")
	if cmd != "pid" && line != "ok" {
		w.t.Fatalf("writer %s: %q\n%s", cmd, line, w.err)
	}
	return line
}

// Exit ends the writer as a killed worker ends: its keys stay.
func (w *Writer) Exit() {
	fmt.Fprintln(w.in, "exit")
	_ = w.cmd.Wait()
}
