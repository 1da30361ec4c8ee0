package e2e

import (
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"
)

// statsdSend sends each line as its own datagram, as gunicorn does.
func statsdSend(t *testing.T, c net.Conn, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if _, err := c.Write([]byte(l)); err != nil {
			t.Fatal(err)
		}
	}
}

func repeat(n int, line string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = line
	}
	return out
}

// TestStatsdJunkTagsDoNotLockOutTraffic replays issue 10's probe against the binary: with
// --gunicorn.statsd-tag-labels=env and the default limit of 16, 16 junk env values fill the
// limit; then 100 env:prod lines and 100 untagged lines must all be counted (they were
// dropped as series_limit until a restart). A worker count of 1e308 is refused (reason
// value).
func TestStatsdJunkTagsDoNotLockOutTraffic(t *testing.T) {
	port := gunicornFreeUDPPort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	x := StartExporter(t, "--gunicorn.statsd-listen-address="+addr, "--gunicorn.statsd-tag-labels=env")
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 16; i++ {
		statsdSend(t, c, fmt.Sprintf("gunicorn.requests:1|c|#env:junk%d", i))
	}
	statsdSend(t, c, repeat(100, "gunicorn.requests:1|c|@1.0|#env:prod")...)
	statsdSend(t, c, repeat(100, "gunicorn.requests:1|c|@1.0")...)
	statsdSend(t, c, "gunicorn.workers:4|g|#env:prod", "gunicorn.workers:1e308|g|#env:prod")
	var m Metrics
	WaitFor(t, 10*time.Second, "218 datagrams", func() bool {
		m = x.Scrape(t)
		return m.Sum("gunicorn_statsd_datagrams_total", nil) == 218
	})
	for env, want := range map[string]float64{"prod": 100, "": 100, "junk0": 0, "junk1": 1, "junk15": 1} {
		if got := m.Sum("gunicorn_statsd_requests_total", map[string]string{"env": env}); got != want {
			t.Errorf("requests{env=%q} %v, want %v", env, got, want)
		}
	}
	if n := m.Count("gunicorn_statsd_requests_total", nil); n != 17 {
		t.Errorf("%d request series, want 17 (16 tagged and the untagged one)", n)
	}
	for name, want := range map[string]float64{
		"gunicorn_statsd_series_evicted_total": 1, // junk0 made room for prod
	} {
		if got := m.Get(t, name, nil); got != want {
			t.Errorf("%s %v, want %v", name, got, want)
		}
	}
	if got := m.Get(t, "gunicorn_statsd_workers", map[string]string{"env": "prod"}); got != 4 {
		t.Errorf("workers %v, want 4 (1e308 refused)", got)
	}
	if got := m.Get(t, "gunicorn_statsd_lines_dropped_total", map[string]string{"reason": "value"}); got != 1 {
		t.Errorf("dropped for value %v, want 1", got)
	}
	if got := m.Sum("gunicorn_statsd_lines_dropped_total", nil); got != 1 {
		t.Errorf("dropped %v in all, want 1", got)
	}
	PromtoolCheck(t, m.Raw)
}

// TestStatsdKernelDropsReportedWithoutLaterDatagram stops the exporter (SIGSTOP), floods its
// statsd socket beyond its receive buffer, lets it go on, and sends nothing more: the
// kernel's drops must show at the next scrape, and received + dropped = sent exactly
// (loopback loses nothing else). Before, the count was learnt only with a later datagram.
func TestStatsdKernelDropsReportedWithoutLaterDatagram(t *testing.T) {
	port := gunicornFreeUDPPort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	x := StartExporter(t, "--gunicorn.statsd-listen-address="+addr)
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := x.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// 4 MiB asked, doubled by the kernel for its bookkeeping: about 8 MiB of small
	// datagrams at roughly 1 KiB each hold fewer than 20,000.
	const sent = 40000
	statsdSend(t, c, repeat(sent, "gunicorn.requests:1|c|@1.0")...)
	if err := x.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	var m Metrics
	var last float64 = -1
	WaitFor(t, 20*time.Second, "the queue to be drained", func() bool {
		m = x.Scrape(t)
		n := m.Sum("gunicorn_statsd_datagrams_total", nil)
		done := n == last && n > 0
		last = n
		time.Sleep(200 * time.Millisecond)
		return done
	})
	received := m.Get(t, "gunicorn_statsd_datagrams_total", nil)
	drops := m.Get(t, "gunicorn_statsd_socket_drops_total", nil)
	if received == sent {
		t.Fatalf("received all %d: the buffer did not overflow as planned", sent)
	}
	if received+drops != sent {
		t.Fatalf("received %v + socket drops %v = %v, want %d sent", received, drops, received+drops, sent)
	}
	if got := m.Get(t, "gunicorn_statsd_requests_total", nil); got != received {
		t.Fatalf("requests %v, want %v", got, received)
	}
}
