package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// noKeepAlive is a client that leaves no idle connection behind in the exporter.
var noKeepAlive = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}

// startLimited runs the exporter under prlimit with the given RLIMIT_NOFILE (soft:hard) and
// waits until it answers, without keeping a connection open.
func startLimited(t *testing.T, nofile string, args ...string) *Exporter {
	t.Helper()
	RequireCommand(t, "prlimit")
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	args = append([]string{"--nofile=" + nofile, exporterBin, "--web.listen-address=" + addr, "--log.level=debug"}, args...)
	x := &Exporter{Process: Start(t, "", nil, "prlimit", args...), URL: "http://" + addr}
	WaitFor(t, 10*time.Second, "exporter healthy", func() bool {
		if x.Exited() {
			t.Fatalf("wsgi_exporter exited early:\n%s", x.Output())
		}
		resp, err := noKeepAlive.Get(x.URL + "/-/healthy")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", x.Cmd.Process.Pid))
	if err != nil || exe != exporterBin {
		t.Fatalf("pid %d runs %q (%v), want the exporter (prlimit execs it)", x.Cmd.Process.Pid, exe, err)
	}
	return x
}

// openFDs counts the exporter's open file descriptors.
func openFDs(t *testing.T, x *Exporter) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", x.Cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// fileLimit returns the soft and hard "Max open files" of the exporter.
func fileLimit(t *testing.T, x *Exporter) (soft, hard int) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", x.Cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 5 && strings.HasPrefix(l, "Max open files") {
			soft, _ = strconv.Atoi(f[3])
			hard, _ = strconv.Atoi(f[4])
			return soft, hard
		}
	}
	t.Fatalf("no open-file limit in:\n%s", b)
	return 0, 0
}

// idleClient opens a connection, asks /-/healthy on it and keeps it open, idle, as a
// keep-alive client does. answered is called when the answer came.
func idleClient(t *testing.T, addr string, answered func()) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write([]byte("GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil && resp.StatusCode == 200 {
			answered()
		}
	}()
	return c
}

// waitLog waits until the exporter's output holds want (its output arrives through a pipe).
func waitLog(t *testing.T, x *Exporter, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(x.Output(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the log lacks %q:\n%s", want, x.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestIdleClientsCannotLockOutMetrics replays issue 10's probe under a small open-file limit
// (64, soft and hard): 100 idle keep-alive clients used to take every descriptor for good,
// /metrics stayed unreachable and "Accept error" lines piled up in the log. Now the exporter
// lowers its connection limit to 64 - 34 reserved (32, and 2 for the one /probe allowed at
// once) = 30, holds exactly that many connections (read from /proc/<pid>/fd), closes idle
// ones after --web.idle-timeout, and a new client gets /metrics.
func TestIdleClientsCannotLockOutMetrics(t *testing.T) {
	x := startLimited(t, "64:64", "--web.idle-timeout=2s", "--probe.max-concurrent=1")
	if soft, hard := fileLimit(t, x); soft != 64 || hard != 64 {
		t.Fatalf("open-file limit %d:%d, want 64:64", soft, hard)
	}
	waitLog(t, x, `msg="--web.max-connections lowered to fit the open-file limit" wanted=256 max_connections=30 open_file_limit=64 reserved_fds=34`)
	// The descriptors of the exporter at rest (the health checks' connections closed), after a
	// first scrape: the exporter keeps /proc/self/stat and /proc/self/net/netstat open from
	// its first reading of its own metrics on.
	resp, err := noKeepAlive.Get(x.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var base int
	WaitFor(t, 5*time.Second, "a stable descriptor count", func() bool {
		a := openFDs(t, x)
		time.Sleep(200 * time.Millisecond)
		base = openFDs(t, x)
		return a == base
	})
	addr := strings.TrimPrefix(x.URL, "http://")

	// Sample the descriptors all along.
	var peak atomic.Int64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", x.Cmd.Process.Pid)); err == nil {
				for n := int64(len(ents)); ; {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
			}
		}
	})
	var answered atomic.Int64
	for i := 0; i < 100; i++ {
		idleClient(t, addr, func() { answered.Add(1) })
	}
	WaitFor(t, 10*time.Second, "30 clients answered", func() bool { return answered.Load() >= 30 })
	time.Sleep(500 * time.Millisecond) // less than the idle timeout
	if n, a := openFDs(t, x), answered.Load(); n != base+30 || a != 30 {
		t.Fatalf("%d descriptors and %d clients answered before the idle timeout, want %d (%d + 30 connections) and 30", n, a, base+30, base)
	}

	close(stop)
	sampler.Wait()
	if p := peak.Load(); p != int64(base+30) {
		t.Fatalf("peak of %d descriptors, want %d (%d + 30 connections)", p, base+30, base)
	}

	// A new client gets /metrics once idle connections are closed (2 s each round: the
	// clients queued before it are served first). (Not sampled: a scrape opens files of
	// /proc/self for a moment, what the reserve is for.)
	start := time.Now()
	resp, err = noKeepAlive.Get(x.URL + "/metrics")
	if err != nil {
		t.Fatalf("/metrics unreachable with 100 idle clients: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: status %d", resp.StatusCode)
	}
	t.Logf("/metrics answered after %v", time.Since(start))
	WaitFor(t, 20*time.Second, "every idle client answered", func() bool { return answered.Load() == 100 })
	WaitFor(t, 10*time.Second, "the idle connections closed", func() bool { return openFDs(t, x) == base })
	for _, bad := range []string{"Accept error", "accepting a connection failed", "too many open files"} {
		if strings.Contains(x.Output(), bad) {
			t.Fatalf("the log has %q:\n%s", bad, x.Output())
		}
	}
}

// TestGoRaisesSoftFileLimit checks what the docs say: Go (1.19+) raises the soft open-file
// limit to the hard one less one at start, so --web.max-connections (256) is kept as it is
// under a soft limit of 64 when the hard limit allows it.
func TestGoRaisesSoftFileLimit(t *testing.T) {
	x := startLimited(t, "64:4096")
	if soft, hard := fileLimit(t, x); soft != 4095 || hard != 4096 {
		t.Fatalf("open-file limit %d:%d, want 4095:4096", soft, hard)
	}
	waitLog(t, x, `msg="web server limits" max_connections=256 idle_timeout=1m0s read_header_timeout=10s write_timeout=2m30s shutdown_grace=2m30s`)
	if strings.Contains(x.Output(), "lowered to fit") {
		t.Fatalf("the limit was lowered:\n%s", x.Output())
	}
}
