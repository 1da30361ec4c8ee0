package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// exporter is an exporter process this program started; only it is ever signalled, by pid.
type exporter struct {
	name string
	url  string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// startExporter runs bin with args on a free loopback port and waits until /-/healthy (or,
// for a peer without it, any answer) comes back.
func startExporter(name, bin, dir string, args ...string) (*exporter, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	logPath := dir + "/" + name + ".log"
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(bin, append([]string{"--web.listen-address=" + addr}, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	x := &exporter{name: name, url: "http://" + addr, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(x.done) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-x.done:
			b, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("%s exited:\n%s", name, b)
		default:
		}
		if resp, err := http.Get(x.url + "/-/healthy"); err == nil {
			resp.Body.Close()
			return x, nil
		}
		if time.Now().After(deadline) {
			x.stop()
			return nil, fmt.Errorf("%s did not answer in 15 s", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM to the exporter by its pid and waits (SIGKILL after 10 s).
func (x *exporter) stop() {
	select {
	case <-x.done:
		return
	default:
	}
	_ = x.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-x.done:
	case <-time.After(10 * time.Second):
		_ = x.cmd.Process.Kill()
		<-x.done
	}
}

// cpuSeconds is utime+stime of the process, all threads, in seconds (10 ms resolution).
func (x *exporter) cpuSeconds() (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", x.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc/pid/stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc/pid/stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return float64(ut+st) / 100, nil // USER_HZ is 100
}

// rssMiB is the process' VmRSS and VmHWM in MiB.
func (x *exporter) rssMiB() (rss, hwm float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", x.cmd.Process.Pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		fs := strings.Fields(v)
		if len(fs) == 0 {
			continue
		}
		n, _ := strconv.ParseFloat(fs[0], 64)
		switch k {
		case "VmRSS":
			rss = n / 1024
		case "VmHWM":
			hwm = n / 1024
		}
	}
	return rss, hwm
}
