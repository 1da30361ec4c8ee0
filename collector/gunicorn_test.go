package collector

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wsgi-exporter/wsgi_exporter/gunicorn"
	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

func TestSlotTrackerReusesLowestFreeSlot(t *testing.T) {
	var st slotTracker
	slots, fresh := st.assign([]int{30, 10, 20})
	if want := map[int]int{10: 0, 20: 1, 30: 2}; !reflect.DeepEqual(slots, want) || len(fresh) != 3 {
		t.Fatalf("%v %v", slots, fresh)
	}
	// 20 dies, 40 and 50 arrive: 40 takes the freed slot 1, 50 the next free one.
	slots, fresh = st.assign([]int{10, 30, 40, 50})
	if want := map[int]int{10: 0, 30: 2, 40: 1, 50: 3}; !reflect.DeepEqual(slots, want) || !fresh[40] || !fresh[50] || len(fresh) != 2 {
		t.Fatalf("%v %v", slots, fresh)
	}
	// Churn (max_requests) never grows the slot numbers beyond the workers alive at once.
	pids := []int{10, 30, 40, 50}
	for i := 0; i < 1000; i++ {
		pids[i%4] = 100 + i
		slots, fresh = st.assign(pids)
		if len(fresh) != 1 {
			t.Fatalf("round %d: fresh %v", i, fresh)
		}
		for _, s := range slots {
			if s > 3 {
				t.Fatalf("round %d: slot %d", i, s)
			}
		}
	}
}

type fakeProcReader struct {
	m   *gunicorn.Master
	err error
}

func (f *fakeProcReader) Read(context.Context, string) (*gunicorn.Master, error) { return f.m, f.err }

func master(pid int, workers ...int) *gunicorn.Master {
	m := &gunicorn.Master{PID: pid, StartTime: 1700000000, CPUSeconds: 1.5, RSSBytes: 2048}
	for _, w := range workers {
		m.Workers = append(m.Workers, gunicorn.Worker{PID: w, StartTime: 1700000000 + float64(w), CPUSeconds: 0.25,
			RSSBytes: 4096, PSSBytes: 1024, HasPSS: true, HeartbeatAge: 3.5, HasHeartbeat: true})
	}
	return m
}

func TestGunicornProcSource(t *testing.T) {
	r := &fakeProcReader{m: master(100, 101, 102)}
	src := newGP("/run/g.pid", r)
	e := newExporter(t, src)
	g := e.Gatherer(context.Background(), time.Second)
	names := []string{"gunicorn_up", "gunicorn_workers", "gunicorn_workers_started_total", "gunicorn_worker_info",
		"gunicorn_worker_heartbeat_age_seconds", "gunicorn_worker_proportional_memory_bytes", "gunicorn_master_info"}
	want := `
# HELP gunicorn_master_info The gunicorn master process read through the pidfile (1); pid is its process id.
# TYPE gunicorn_master_info gauge
gunicorn_master_info{pid="100",pidfile="/run/g.pid"} 1
# HELP gunicorn_up Whether the last scrape of the gunicorn master (pidfile and /proc) succeeded (1) or failed (0).
# TYPE gunicorn_up gauge
gunicorn_up{pidfile="/run/g.pid"} 1
# HELP gunicorn_worker_heartbeat_age_seconds Seconds since the worker last touched its heartbeat file, the signal gunicorn's --timeout acts on. An idle sync worker touches it every timeout/2; a worker stuck in a request does not.
# TYPE gunicorn_worker_heartbeat_age_seconds gauge
gunicorn_worker_heartbeat_age_seconds{pidfile="/run/g.pid",slot="0"} 3.5
gunicorn_worker_heartbeat_age_seconds{pidfile="/run/g.pid",slot="1"} 3.5
# HELP gunicorn_worker_info A worker in a slot (1); pid is its current process id. A new worker takes the lowest free slot.
# TYPE gunicorn_worker_info gauge
gunicorn_worker_info{pid="101",pidfile="/run/g.pid",slot="0"} 1
gunicorn_worker_info{pid="102",pidfile="/run/g.pid",slot="1"} 1
# HELP gunicorn_worker_proportional_memory_bytes Proportional set size (Pss of /proc/<pid>/smaps_rollup) of a worker: shared pages divided among their sharers, so it sums to the real total.
# TYPE gunicorn_worker_proportional_memory_bytes gauge
gunicorn_worker_proportional_memory_bytes{pidfile="/run/g.pid",slot="0"} 1024
gunicorn_worker_proportional_memory_bytes{pidfile="/run/g.pid",slot="1"} 1024
# HELP gunicorn_workers Worker processes of the master (its children) at this scrape.
# TYPE gunicorn_workers gauge
gunicorn_workers{pidfile="/run/g.pid"} 2
# HELP gunicorn_workers_started_total Workers that appeared since the exporter first saw this master, after its initial spawn: replacements after a crash, kill, timeout or max_requests, and workers added by TTIN. A worker born and gone between two scrapes is not seen.
# TYPE gunicorn_workers_started_total counter
gunicorn_workers_started_total{pidfile="/run/g.pid"} 0
`
	if err := testutil.GatherAndCompare(g, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	// Worker 101 is replaced by 103 and a TTIN adds 104: two started, 103 takes slot 0.
	r.m = master(100, 102, 103, 104)
	mfs, _ := e.Gatherer(context.Background(), time.Second).Gather()
	got := map[string]string{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetName() == "gunicorn_worker_info" {
				var slot, pid string
				for _, l := range m.GetLabel() {
					switch l.GetName() {
					case "slot":
						slot = l.GetValue()
					case "pid":
						pid = l.GetValue()
					}
				}
				got[slot] = pid
			}
			if mf.GetName() == "gunicorn_workers_started_total" && m.GetCounter().GetValue() != 2 {
				t.Errorf("started %v, want 2", m.GetCounter().GetValue())
			}
		}
	}
	if want := map[string]string{"0": "103", "1": "102", "2": "104"}; !reflect.DeepEqual(got, want) {
		t.Errorf("slots %v, want %v", got, want)
	}
	// gunicorn stops: up 0 with the reason; the restart counter survives.
	r.err = fetch.Errorf(fetch.ReasonNotFound, "pidfile missing")
	_, _ = e.Gatherer(context.Background(), time.Second).Gather()
	if v := e.errorCount("gunicorn", "/run/g.pid", fetch.ReasonNotFound); v != 1 {
		t.Errorf("not_found errors %v, want 1", v)
	}
	// A new master: its workers are the baseline, not restarts.
	r.m, r.err = master(200, 201, 202, 203, 204), nil
	want = `
# HELP gunicorn_workers_started_total Workers that appeared since the exporter first saw this master, after its initial spawn: replacements after a crash, kill, timeout or max_requests, and workers added by TTIN. A worker born and gone between two scrapes is not seen.
# TYPE gunicorn_workers_started_total counter
gunicorn_workers_started_total{pidfile="/run/g.pid"} 2
`
	if err := testutil.GatherAndCompare(e.Gatherer(context.Background(), time.Second), strings.NewReader(want), "gunicorn_workers_started_total"); err != nil {
		t.Fatal(err)
	}
}

func statsdFixture(t testing.TB) [][]byte {
	t.Helper()
	b, err := os.ReadFile("../fixtures/gunicorn/gunicorn_statsd_lines.txt")
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if l := sc.Bytes(); len(l) > 0 && l[0] != '#' {
			out = append(out, append([]byte(nil), l...))
		}
	}
	return out
}

// runStatsd starts the source's listener on an ephemeral loopback port.
func runStatsd(t *testing.T, sc gunicorn.StatsdConfig) *GunicornStatsdSource {
	t.Helper()
	s, err := NewGunicornStatsd(Config{Address: "127.0.0.1:0", Name: "g"}, sc)
	if err != nil {
		t.Fatal(err)
	}
	src := s.(*GunicornStatsdSource)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = src.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	<-src.Listener().Ready()
	return src
}

func TestGunicornStatsdReplayFixture(t *testing.T) {
	src := runStatsd(t, gunicorn.StatsdConfig{TagLabels: []string{"env", "svc"}})
	for _, d := range statsdFixture(t) {
		src.State().HandleDatagram(d)
	}
	e := newExporter(t, src)
	want := `
# HELP gunicorn_statsd_up Whether the last scrape of the gunicorn statsd listener succeeded (1) or failed (0).
# TYPE gunicorn_statsd_up gauge
gunicorn_statsd_up{source="g"} 1
# HELP gunicorn_statsd_datagrams_total Datagrams received.
# TYPE gunicorn_statsd_datagrams_total counter
gunicorn_statsd_datagrams_total{source="g"} 97
# HELP gunicorn_statsd_socket_drops_total Datagrams the kernel dropped because the listener's receive buffer was full (read from the socket at each scrape).
# TYPE gunicorn_statsd_socket_drops_total counter
gunicorn_statsd_socket_drops_total{source="g"} 0
# HELP gunicorn_statsd_series_evicted_total Tag-label combinations dropped to make room for a new one (the least recently updated goes; --gunicorn.statsd-max-series).
# TYPE gunicorn_statsd_series_evicted_total counter
gunicorn_statsd_series_evicted_total{source="g"} 0
# HELP gunicorn_statsd_requests_total Requests gunicorn reported (gunicorn.requests), scaled by the sample rate.
# TYPE gunicorn_statsd_requests_total counter
gunicorn_statsd_requests_total{env="",source="g",svc=""} 15
gunicorn_statsd_requests_total{env="test",source="g",svc="demo"} 14
# HELP gunicorn_statsd_responses_total Requests gunicorn reported by HTTP status code (gunicorn.request.status.<code>).
# TYPE gunicorn_statsd_responses_total counter
gunicorn_statsd_responses_total{code="200",env="",source="g",svc=""} 11
gunicorn_statsd_responses_total{code="404",env="",source="g",svc=""} 2
gunicorn_statsd_responses_total{code="405",env="",source="g",svc=""} 1
gunicorn_statsd_responses_total{code="500",env="",source="g",svc=""} 1
gunicorn_statsd_responses_total{code="200",env="test",source="g",svc="demo"} 12
gunicorn_statsd_responses_total{code="404",env="test",source="g",svc="demo"} 1
gunicorn_statsd_responses_total{code="500",env="test",source="g",svc="demo"} 1
# HELP gunicorn_statsd_workers Worker count gunicorn last reported (gunicorn.workers; sent only when it changes).
# TYPE gunicorn_statsd_workers gauge
gunicorn_statsd_workers{env="",source="g",svc=""} 4
gunicorn_statsd_workers{env="test",source="g",svc="demo"} 4
# HELP gunicorn_statsd_log_messages_total Log messages gunicorn reported by level (gunicorn.log.<level>).
# TYPE gunicorn_statsd_log_messages_total counter
gunicorn_statsd_log_messages_total{env="",level="warning",source="g",svc=""} 1
gunicorn_statsd_log_messages_total{env="test",level="critical",source="g",svc="demo"} 1
gunicorn_statsd_log_messages_total{env="test",level="warning",source="g",svc="demo"} 2
# HELP gunicorn_statsd_request_duration_seconds Request durations gunicorn reported (gunicorn.request.duration).
# TYPE gunicorn_statsd_request_duration_seconds histogram
gunicorn_statsd_request_duration_seconds_bucket{env="",source="g",svc="",le="0.005"} 13
gunicorn_statsd_request_duration_seconds_bucket{env="",source="g",svc="",le="0.01"} 14
gunicorn_statsd_request_duration_seconds_bucket{env="",source="g",svc="",le="0.025"} 14
gunicorn_statsd_request_duration_seconds_bucket{env="",source="g",svc="",le="0.05"} 14
gunicorn_statsd_request_duration_seconds_bucket{env="",source="g",svc="",le="0.1"} 14
gunicorn_statsd_request_duration_seconds_bucket{env="",source="g",svc="",le="0.25"} 15
gunicorn_statsd_request_duration_seconds_bucket{env="",source="g",svc="",le="0.5"} 15
gunicorn_statsd_request_duration_seconds_bucket{env="",source="g",svc="",le="1"} 15
gunicorn_statsd_request_duration_seconds_bucket{env="",source="g",svc="",le="2.5"} 15
gunicorn_statsd_request_duration_seconds_bucket{env="",source="g",svc="",le="5"} 15
gunicorn_statsd_request_duration_seconds_bucket{env="",source="g",svc="",le="10"} 15
gunicorn_statsd_request_duration_seconds_bucket{env="",source="g",svc="",le="30"} 15
gunicorn_statsd_request_duration_seconds_bucket{env="",source="g",svc="",le="60"} 15
gunicorn_statsd_request_duration_seconds_bucket{env="",source="g",svc="",le="+Inf"} 15
gunicorn_statsd_request_duration_seconds_sum{env="",source="g",svc=""} 0.22094
gunicorn_statsd_request_duration_seconds_count{env="",source="g",svc=""} 15
gunicorn_statsd_request_duration_seconds_bucket{env="test",source="g",svc="demo",le="0.005"} 14
gunicorn_statsd_request_duration_seconds_bucket{env="test",source="g",svc="demo",le="0.01"} 14
gunicorn_statsd_request_duration_seconds_bucket{env="test",source="g",svc="demo",le="0.025"} 14
gunicorn_statsd_request_duration_seconds_bucket{env="test",source="g",svc="demo",le="0.05"} 14
gunicorn_statsd_request_duration_seconds_bucket{env="test",source="g",svc="demo",le="0.1"} 14
gunicorn_statsd_request_duration_seconds_bucket{env="test",source="g",svc="demo",le="0.25"} 14
gunicorn_statsd_request_duration_seconds_bucket{env="test",source="g",svc="demo",le="0.5"} 14
gunicorn_statsd_request_duration_seconds_bucket{env="test",source="g",svc="demo",le="1"} 14
gunicorn_statsd_request_duration_seconds_bucket{env="test",source="g",svc="demo",le="2.5"} 14
gunicorn_statsd_request_duration_seconds_bucket{env="test",source="g",svc="demo",le="5"} 14
gunicorn_statsd_request_duration_seconds_bucket{env="test",source="g",svc="demo",le="10"} 14
gunicorn_statsd_request_duration_seconds_bucket{env="test",source="g",svc="demo",le="30"} 14
gunicorn_statsd_request_duration_seconds_bucket{env="test",source="g",svc="demo",le="60"} 14
gunicorn_statsd_request_duration_seconds_bucket{env="test",source="g",svc="demo",le="+Inf"} 14
gunicorn_statsd_request_duration_seconds_sum{env="test",source="g",svc="demo"} 0.016799
gunicorn_statsd_request_duration_seconds_count{env="test",source="g",svc="demo"} 14
`
	names := []string{"gunicorn_statsd_up", "gunicorn_statsd_datagrams_total", "gunicorn_statsd_socket_drops_total", "gunicorn_statsd_series_evicted_total", "gunicorn_statsd_requests_total",
		"gunicorn_statsd_responses_total", "gunicorn_statsd_workers", "gunicorn_statsd_log_messages_total",
		"gunicorn_statsd_request_duration_seconds"}
	if err := testutil.GatherAndCompare(e.Gatherer(context.Background(), time.Second), strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(e.Gatherer(context.Background(), time.Second), "gunicorn_statsd_lines_dropped_total"); err != nil || n != len(gunicorn.DropReasons) {
		t.Fatalf("dropped series %d (%v)", n, err)
	}
}

func TestGunicornStatsdDownWhenNotBound(t *testing.T) {
	src, err := NewGunicornStatsd(Config{Address: "127.0.0.1:0"}, gunicorn.StatsdConfig{})
	if err != nil {
		t.Fatal(err)
	}
	err = src.Scrape(context.Background(), testWriter(src))
	if fetch.ReasonOf(err) != fetch.ReasonConnect {
		t.Fatalf("scrape before Run: %v", err)
	}
	if _, err := NewGunicornStatsd(Config{Address: "x"}, gunicorn.StatsdConfig{}); err == nil {
		t.Error("bad address accepted")
	}
	if _, err := NewGunicornStatsd(Config{Address: ":0"}, gunicorn.StatsdConfig{TagLabels: []string{"code"}}); err == nil {
		t.Error("tag label code accepted")
	}
}

func TestGunicornInitialSpawnIsNotRestarts(t *testing.T) {
	w := func(pid int, start float64) gunicorn.Worker { return gunicorn.Worker{PID: pid, StartTime: start} }
	r := &fakeProcReader{m: &gunicorn.Master{PID: 1, Workers: []gunicorn.Worker{w(10, 100), w(11, 100.05)}}}
	src := newGP("p", r)
	now := 100.1
	src.now = func() float64 { return now }
	scrape := func() {
		t.Helper()
		if err := src.Scrape(context.Background(), testWriter(src)); err != nil {
			t.Fatal(err)
		}
	}
	scrape() // caught in the middle of the spawn loop
	r.m.Workers = append(r.m.Workers, w(12, 100.12), w(13, 100.9))
	now = 101
	scrape()
	if src.started != 0 {
		t.Fatalf("the initial spawn counted %v restarts", src.started)
	}
	// 11 dies; its replacement starts long after the spawn loop.
	r.m.Workers = []gunicorn.Worker{w(10, 100), w(12, 100.12), w(13, 100.9), w(14, 104)}
	now = 105
	scrape()
	if src.started != 1 {
		t.Fatalf("started %v, want 1", src.started)
	}
}

// Start times from /proc rest on the boot time in whole seconds, so they can read up to a
// second earlier than the wall clock: a scrape right after the first forks must not close the
// initial burst and count the rest of the spawn loop as restarts.
func TestGunicornInitialSpawnWithTruncatedBootTime(t *testing.T) {
	w := func(pid int, start float64) gunicorn.Worker { return gunicorn.Worker{PID: pid, StartTime: start} }
	// Real starts 100.95 and 101.0; the boot time's lost fraction (0.95) makes them read 100.0, 100.05.
	r := &fakeProcReader{m: &gunicorn.Master{PID: 1, Workers: []gunicorn.Worker{w(10, 100), w(11, 100.05)}}}
	src := newGP("p", r)
	now := 101.2 // 0.2 s of real time after the second fork
	src.now = func() float64 { return now }
	if err := src.Scrape(context.Background(), testWriter(src)); err != nil {
		t.Fatal(err)
	}
	r.m.Workers = append(r.m.Workers, w(12, 100.15), w(13, 100.3))
	now = 101.5
	if err := src.Scrape(context.Background(), testWriter(src)); err != nil {
		t.Fatal(err)
	}
	if src.started != 0 {
		t.Fatalf("the initial spawn counted %v restarts", src.started)
	}
}
