package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a process this program started; only these are ever signalled, by pid.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	stopSig syscall.Signal
	done    chan struct{}
}

var (
	procsMu sync.Mutex
	procs   []*proc
	stopped bool // stopAll ran: nothing more may start
)

// start runs argv in dir with its output in logPath. The child gets its own process group (a
// Ctrl-C at the terminal reaches only this program, which then stops its children in order)
// and SIGTERM if this program dies without cleaning up.
func start(name, dir, logPath string, stopSig syscall.Signal, argv ...string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, stopSig: stopSig, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	procsMu.Lock()
	defer procsMu.Unlock()
	if stopped {
		p.stop()
		return nil, fmt.Errorf("%s: stopping", name)
	}
	procs = append(procs, p)
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop signals the process by its pid and waits for it (SIGKILL after 15 s).
func (p *proc) stop() {
	if !p.alive() {
		return
	}
	_ = p.cmd.Process.Signal(p.stopSig)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		fmt.Fprintf(os.Stderr, "%s (pid %d) did not stop in 15 s: SIGKILL\n", p.name, p.pid())
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// logTail is the end of the process' output, for error messages.
func (p *proc) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// stopAll stops every process still running, the last started first. A second call waits
// for the first to finish.
func stopAll() {
	procsMu.Lock()
	defer procsMu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].stop()
	}
	procs = nil
	stopped = true
}

// cpuTicks is utime+stime of a process (all its threads, living and exited), in clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
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
	// After the command: state is field 3 of stat(5), utime 14 and stime 15.
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return ut + st, nil
}

// schedNs is the time on CPU of a process' living threads, in ns, from each thread's
// /proc/<pid>/task/<tid>/schedstat: precise where utime+stime has a 10 ms resolution, but it
// misses threads that exited (Go rarely ends a thread, so the two agree over a window).
func schedNs(pid int) (int64, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/schedstat")
		if err != nil {
			continue // the thread exited meanwhile
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s/%s/schedstat: %w", dir, t.Name(), err)
		}
		total += n
	}
	return total, nil
}

// clockTick is USER_HZ, the unit of utime and stime in /proc (100 on every Linux architecture
// this runs on; the kernel converts to it whatever its internal HZ).
const clockTick = 100

func ticksToMs(t int64) float64 { return float64(t) * 1000 / clockTick }

// memKiB is VmRSS and VmHWM of a process, in KiB.
func memKiB(pid int) (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(fs[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			hwm = n
		}
	}
	return rss, hwm, sc.Err()
}

// freePort asks the kernel for a free loopback port ("tcp" or "udp"). It is free when this
// returns; a process that then fails to bind it is retried on another.
func freePort(network string) (int, error) {
	switch network {
	case "tcp":
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port, nil
	default:
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	}
}

// lookPath finds a program in PATH or in the sbin directories (nginx is in /usr/sbin, which a
// non-root PATH may lack).
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := d + "/" + name
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in PATH or /usr/sbin", name)
}

// udpSocket is a bound UDP socket as /proc/net/udp shows it.
type udpSocket struct {
	rxQueue int64 // bytes waiting in the receive buffer
	drops   int64 // datagrams the kernel dropped (receive buffer full)
}

// udpSocketByPort finds the socket bound to 127.0.0.1:port.
func udpSocketByPort(port int) (udpSocket, bool, error) {
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return udpSocket{}, false, err
	}
	want := fmt.Sprintf("0100007F:%04X", port)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 13 || f[1] != want {
			continue
		}
		_, rx, _ := strings.Cut(f[4], ":")
		q, err1 := strconv.ParseInt(rx, 16, 64)
		d, err2 := strconv.ParseInt(f[len(f)-1], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return udpSocket{}, false, fmt.Errorf("/proc/net/udp: %q: %w", line, err)
		}
		return udpSocket{rxQueue: q, drops: d}, true, nil
	}
	return udpSocket{}, false, nil
}
