package gunicorn

import (
	"bufio"
	"bytes"
	"context"
	"math"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const fixture = "../fixtures/gunicorn/gunicorn_statsd_lines.txt"

// fixtureDatagrams returns the captured datagrams, without the annotation lines.
func fixtureDatagrams(t testing.TB) [][]byte {
	t.Helper()
	b, err := os.ReadFile(fixture)
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

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestStatsdReplayFixtureUntagged(t *testing.T) {
	s := NewStatsdState(StatsdConfig{})
	dgs := fixtureDatagrams(t)
	for _, d := range dgs {
		s.HandleDatagram(d)
	}
	snap := s.Snapshot()
	if snap.Datagrams != 97 || snap.Lines != 97 || len(dgs) != 97 {
		t.Fatalf("datagrams %v lines %v (fixture %d), want 97", snap.Datagrams, snap.Lines, len(dgs))
	}
	for r, n := range snap.Dropped {
		if n != 0 {
			t.Errorf("dropped %v lines for %s", n, r)
		}
	}
	if len(snap.Groups) != 1 {
		t.Fatalf("%d groups, want 1", len(snap.Groups))
	}
	g := snap.Groups[0]
	// Run 1: 15 requests (11x200, 2x404, 500, 405); run 2: 14 (12x200, 404, 500).
	if g.Requests != 29 {
		t.Errorf("requests %v, want 29", g.Requests)
	}
	if want := map[int]float64{200: 23, 404: 3, 500: 2, 405: 1}; !reflect.DeepEqual(g.Status, want) {
		t.Errorf("status %v, want %v", g.Status, want)
	}
	if want := map[string]float64{"warning": 3, "critical": 1}; !reflect.DeepEqual(g.Logs, want) {
		t.Errorf("logs %v, want %v", g.Logs, want)
	}
	if !g.HasWorkers || g.Workers != 4 {
		t.Errorf("workers %v (%v), want 4", g.Workers, g.HasWorkers)
	}
	if g.HasBacklog {
		t.Errorf("backlog set, gunicorn 20.1 sends none")
	}
	if g.DurationCount != 29 || !near(g.DurationSum, 0.237739) {
		t.Errorf("durations: count %v sum %v, want 29 and 0.237739", g.DurationCount, g.DurationSum)
	}
	// 27 durations <= 5 ms, 5.523 ms <= 10 ms, 200.902 ms <= 250 ms.
	want := []float64{27, 28, 28, 28, 28, 29, 29, 29, 29, 29, 29, 29, 29}
	if !reflect.DeepEqual(g.Buckets, want) {
		t.Errorf("buckets %v, want %v", g.Buckets, want)
	}
}

func TestStatsdReplayFixtureTagged(t *testing.T) {
	s := NewStatsdState(StatsdConfig{TagLabels: []string{"env", "svc"}})
	for _, d := range fixtureDatagrams(t) {
		s.HandleDatagram(d)
	}
	snap := s.Snapshot()
	if len(snap.Groups) != 2 {
		t.Fatalf("%d groups, want 2", len(snap.Groups))
	}
	run1, run2 := snap.Groups[0], snap.Groups[1]
	if !reflect.DeepEqual(run1.TagValues, []string{"", ""}) || !reflect.DeepEqual(run2.TagValues, []string{"test", "demo"}) {
		t.Fatalf("tag values %q and %q", run1.TagValues, run2.TagValues)
	}
	if run1.Requests != 15 || run2.Requests != 14 {
		t.Errorf("requests %v and %v, want 15 and 14", run1.Requests, run2.Requests)
	}
	if want := map[int]float64{200: 11, 404: 2, 500: 1, 405: 1}; !reflect.DeepEqual(run1.Status, want) {
		t.Errorf("run 1 status %v", run1.Status)
	}
	if want := map[int]float64{200: 12, 404: 1, 500: 1}; !reflect.DeepEqual(run2.Status, want) {
		t.Errorf("run 2 status %v", run2.Status)
	}
	if want := map[string]float64{"warning": 2, "critical": 1}; !reflect.DeepEqual(run2.Logs, want) {
		t.Errorf("run 2 logs %v", run2.Logs)
	}
	if run1.Workers != 4 || run2.Workers != 4 {
		t.Errorf("workers %v and %v", run1.Workers, run2.Workers)
	}
	if !near(run1.DurationSum, 0.22094) || !near(run2.DurationSum, 0.016799) || run1.DurationCount != 15 || run2.DurationCount != 14 {
		t.Errorf("durations %v/%v and %v/%v", run1.DurationCount, run1.DurationSum, run2.DurationCount, run2.DurationSum)
	}
}

func TestParseStatsdLine(t *testing.T) {
	ok := []struct {
		line string
		want StatsdSample
	}{
		{"gunicorn.requests:1|c|@1.0", StatsdSample{Metric: StatsdRequests, Value: 1, Rate: 1}},
		{"a.b.gunicorn.requests:2|c|@0.5|#x:y", StatsdSample{Metric: StatsdRequests, Value: 2, Rate: 0.5, Tags: []byte("x:y")}},
		{"gunicorn.gunicorn.requests:1|c", StatsdSample{Metric: StatsdRequests, Value: 1, Rate: 1}},
		{"gunicorn.request.status.503:1|c|@1.0", StatsdSample{Metric: StatsdStatus, Code: 503, Value: 1, Rate: 1}},
		{"gunicorn.request.duration:200.902|ms", StatsdSample{Metric: StatsdDuration, Value: 200.902, Rate: 1}},
		{"gunicorn.workers:5|g", StatsdSample{Metric: StatsdWorkers, Value: 5, Rate: 1}},
		{"gunicorn.workers:-1|g", StatsdSample{Metric: StatsdWorkers, Value: -1, Relative: true, Rate: 1}},
		{"gunicorn.log.critical:1|c|@1.0|#env:test,svc:demo", StatsdSample{Metric: StatsdLog, Level: "critical", Value: 1, Rate: 1, Tags: []byte("env:test,svc:demo")}},
		{"gunicorn.backlog:3|h", StatsdSample{Metric: StatsdBacklog, Value: 3, Rate: 1}},
		{"gunicorn.backlog:3|ms|c:abc|T1700000000", StatsdSample{Metric: StatsdBacklog, Value: 3, Rate: 1}},
	}
	for _, c := range ok {
		got, err := ParseStatsdLine([]byte(c.line))
		if err != nil {
			t.Errorf("%q: %v", c.line, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: got %+v, want %+v", c.line, got, c.want)
		}
	}
	bad := map[string]string{
		"":                                 DropSyntax,
		"gunicorn.requests":                DropSyntax,
		":1|c":                             DropSyntax,
		"gunicorn.requests:1":              DropSyntax,
		"gunicorn.requests:1|c|x":          DropSyntax,
		"gunicorn.requests:abc|c":          DropValue,
		"gunicorn.requests:NaN|c":          DropValue,
		"gunicorn.requests:+Inf|c":         DropValue,
		"gunicorn.requests:-1|c|@1.0":      DropValue,
		"gunicorn.request.duration:-3|ms":  DropValue,
		"gunicorn.requests:1|g":            DropType,
		"gunicorn.workers:1|c":             DropType,
		"gunicorn.request.duration:1|c":    DropType,
		"gunicorn.requests:1|c|@0":         DropSampleRate,
		"gunicorn.requests:1|c|@2":         DropSampleRate,
		"gunicorn.requests:1|c|@NaN":       DropSampleRate,
		"other.metric:1|c":                 DropUnknown,
		"xgunicorn.requests:1|c":           DropUnknown,
		"gunicorn.request.status.99:1|c":   DropUnknown,
		"gunicorn.request.status.600:1|c":  DropUnknown,
		"gunicorn.request.status.2000:1|c": DropUnknown,
		"gunicorn.request.status.+20:1|c":  DropUnknown,
		"gunicorn.log.fatal:1|c":           DropUnknown,
		"gunicorn.requests:1|c|" + strings.Repeat("#", MaxStatsdLine): DropTooLong,
	}
	for line, reason := range bad {
		_, err := ParseStatsdLine([]byte(line))
		se, ok := err.(*StatsdError)
		if !ok || se.Reason != reason {
			t.Errorf("%q: got %v, want reason %s", line, err, reason)
		}
	}
}

func TestStatsdStateRatesTagsAndLimits(t *testing.T) {
	s := NewStatsdState(StatsdConfig{TagLabels: []string{"env"}, MaxSeries: 1})
	s.HandleDatagram([]byte("gunicorn.requests:1|c|@0.25\ngunicorn.request.duration:20|ms|@0.5\r\n\ngunicorn.workers:3|g\ngunicorn.workers:+2|g"))
	s.HandleDatagram([]byte("gunicorn.requests:1|c|#env:b"))
	s.HandleDatagram([]byte("gunicorn.requests:1|c|#env:a,other:ignored"))         // takes b's place
	s.HandleDatagram([]byte("gunicorn.requests:1|c|#env:\xff"))                    // invalid UTF-8
	s.HandleDatagram([]byte("gunicorn.requests:1|c|#" + strings.Repeat("a,", 40))) // too many tags
	s.HandleDatagram([]byte("junk\ngunicorn.requests:x|c"))
	s.Drop(DropTooLong)
	snap := s.Snapshot()
	if snap.Datagrams != 7 || snap.Lines != 10 {
		t.Errorf("datagrams %v lines %v, want 7 and 10", snap.Datagrams, snap.Lines)
	}
	wantDrops := map[string]float64{DropSyntax: 1, DropValue: 1, DropType: 0, DropSampleRate: 0, DropUnknown: 0,
		DropTooLong: 1, DropTags: 2}
	if !reflect.DeepEqual(snap.Dropped, wantDrops) {
		t.Errorf("dropped %v, want %v", snap.Dropped, wantDrops)
	}
	if len(snap.Groups) != 2 || snap.Evicted != 1 {
		t.Fatalf("evicted %v, groups %+v", snap.Evicted, snap.Groups)
	}
	g := snap.Groups[0]
	if g.TagValues[0] != "" || g.Requests != 4 || g.DurationCount != 2 || !near(g.DurationSum, 0.04) || g.Workers != 5 {
		t.Errorf("untagged group %+v", g)
	}
	if snap.Groups[1].TagValues[0] != "a" || snap.Groups[1].Requests != 1 {
		t.Errorf("tagged group %+v", snap.Groups[1])
	}
}

func TestStatsdConfigCheck(t *testing.T) {
	if err := (StatsdConfig{TagLabels: []string{"env", "svc"}}).Check("source", "code"); err != nil {
		t.Error(err)
	}
	for _, c := range []StatsdConfig{
		{TagLabels: []string{"bad-name"}},
		{TagLabels: []string{"env", "env"}},
		{TagLabels: []string{"code"}},
		{TagLabels: []string{"__x"}},
		{MaxSeries: -1},
	} {
		if err := c.Check("source", "code"); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

func TestParseListenAddress(t *testing.T) {
	for in, want := range map[string][2]string{
		"127.0.0.1:9125":     {"udp", "127.0.0.1:9125"},
		":9125":              {"udp", ":9125"},
		"[::1]:9125":         {"udp", "[::1]:9125"},
		"/run/statsd.sock":   {"unixgram", "/run/statsd.sock"},
		"unix:/run/s.sock":   {"unixgram", "/run/s.sock"},
		"unix:///run/s.sock": {"unixgram", "/run/s.sock"},
		"unixgram:/x":        {"unixgram", "/x"},
	} {
		n, a, err := ParseListenAddress(in)
		if err != nil || n != want[0] || a != want[1] {
			t.Errorf("%q: %s %s %v, want %v", in, n, a, err, want)
		}
	}
	for _, in := range []string{"", "localhost", "unix:", "unix:relative.sock", "1.2.3.4"} {
		if _, _, err := ParseListenAddress(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func runListener(t *testing.T, addr string) (*StatsdListener, *StatsdState) {
	t.Helper()
	st := NewStatsdState(StatsdConfig{})
	l, err := NewStatsdListener(addr, st)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = l.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	<-l.Ready()
	return l, st
}

func waitDatagrams(t *testing.T, st *StatsdState, n float64) StatsdSnapshot {
	t.Helper()
	for i := 0; i < 200; i++ {
		if s := st.Snapshot(); s.Datagrams >= n {
			return s
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("fewer than %v datagrams arrived", n)
	return StatsdSnapshot{}
}

func TestStatsdListenerUDPAndUnix(t *testing.T) {
	l, st := runListener(t, "127.0.0.1:0")
	addr, err := l.Bound()
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("udp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, d := range fixtureDatagrams(t) {
		if _, err := c.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	snap := waitDatagrams(t, st, 97)
	if snap.Groups[0].Requests != 29 {
		t.Errorf("requests %v, want 29", snap.Groups[0].Requests)
	}

	path := filepath.Join(t.TempDir(), "statsd.sock")
	_, ust := runListener(t, "unix:"+path)
	uc, err := net.Dial("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	if _, err := uc.Write([]byte("gunicorn.requests:1|c|@1.0\ngunicorn.request.status.404:1|c")); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("x"), maxDatagram+10)
	if _, err := uc.Write(big); err != nil {
		t.Fatal(err)
	}
	snap = waitDatagrams(t, ust, 2)
	if snap.Groups[0].Requests != 1 || snap.Groups[0].Status[404] != 1 || snap.Dropped[DropTooLong] != 1 {
		t.Errorf("unix socket: %+v", snap)
	}
}

func TestStatsdListenerBindFailure(t *testing.T) {
	busy, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	l, _ := runListener(t, busy.LocalAddr().String())
	if a, err := l.Bound(); a != nil || err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("bound %v err %v, want address in use", a, err)
	}
}

func FuzzParseStatsdLine(f *testing.F) {
	b, err := os.ReadFile(fixture)
	if err != nil {
		f.Fatal(err)
	}
	for _, l := range bytes.Split(b, []byte{'\n'}) {
		f.Add(l)
	}
	f.Add([]byte("gunicorn.workers:-1|g|@0.5|#a:b,c"))
	f.Fuzz(func(t *testing.T, line []byte) {
		s, err := ParseStatsdLine(line)
		if err != nil {
			if _, ok := err.(*StatsdError); !ok {
				t.Fatalf("error of type %T", err)
			}
			return
		}
		if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) || !(s.Rate >= MinSampleRate && s.Rate <= 1) || s.Metric == 0 {
			t.Fatalf("accepted %+v from %q", s, line)
		}
		switch s.Metric {
		case StatsdRequests, StatsdStatus, StatsdLog:
			if s.Value < 0 || s.Value > MaxCounterValue || s.Value != math.Trunc(s.Value) {
				t.Fatalf("accepted counter value %v from %q", s.Value, line)
			}
		case StatsdDuration:
			if s.Value < 0 || s.Value > MaxDurationMillis {
				t.Fatalf("accepted duration %v from %q", s.Value, line)
			}
		case StatsdWorkers:
			if math.Abs(s.Value) > MaxWorkerCount || s.Value != math.Trunc(s.Value) || (s.Value < 0 && !s.Relative) {
				t.Fatalf("accepted worker count %v from %q", s.Value, line)
			}
		case StatsdBacklog:
			if s.Value < 0 || s.Value > MaxBacklog || s.Value != math.Trunc(s.Value) {
				t.Fatalf("accepted backlog %v from %q", s.Value, line)
			}
		}
	})
}

func FuzzStatsdDatagram(f *testing.F) {
	b, err := os.ReadFile(fixture)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	for _, l := range bytes.Split(b, []byte{'\n'}) {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, d []byte) {
		s := NewStatsdState(StatsdConfig{TagLabels: []string{"env", "svc"}, MaxSeries: 4})
		s.HandleDatagram(d)
		snap := s.Snapshot()
		if len(snap.Groups) > 4+1 { // and the untagged one
			t.Fatalf("%d groups over the limit", len(snap.Groups))
		}
		// One datagram of lines within the bounds adds at most 64 KiB/8 lines x 1e12 to any
		// count: everything stays finite and non-negative.
		for _, g := range snap.Groups {
			vs := append([]float64{g.Requests, g.DurationCount, g.DurationSum, g.Workers, g.Backlog}, g.Buckets...)
			for _, v := range g.Status {
				vs = append(vs, v)
			}
			for _, v := range g.Logs {
				vs = append(vs, v)
			}
			for _, v := range vs {
				if !finite(v) || v < 0 {
					t.Fatalf("bad group %+v", g)
				}
			}
			if g.Workers > MaxWorkerCount || g.Workers != math.Trunc(g.Workers) || g.Backlog > MaxBacklog {
				t.Fatalf("gauge out of bounds in %+v", g)
			}
		}
	})
}

// TestStatsdSocketDropsCounted overflows a socket's receive buffer on purpose and checks the
// kernel's drop count against what was sent and received.
func TestStatsdSocketDropsCounted(t *testing.T) {
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.(*net.UDPConn).SetReadBuffer(4096)
	enableDropCount(conn)
	c, err := net.Dial("udp", conn.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const sent = 500
	for i := 0; i < sent; i++ {
		if _, err := c.Write([]byte("gunicorn.requests:1|c|@1.0")); err != nil {
			t.Fatal(err)
		}
	}
	st := NewStatsdState(StatsdConfig{})
	r, err := newBatchReader(conn)
	if err != nil {
		t.Fatal(err)
	}
	received := 0
	read := func() bool {
		_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := r.read()
		if err != nil {
			return false
		}
		received += n
		st.handleBatch(r.batch(n, nil))
		return true
	}
	for read() {
	}
	// The kernel stamps a datagram with the drops counted when it was queued: one more,
	// queued after the overflow, carries the count.
	if _, err := c.Write([]byte("gunicorn.requests:1|c|@1.0")); err != nil {
		t.Fatal(err)
	}
	if !read() {
		t.Fatal("the datagram after the overflow did not arrive")
	}
	snap := st.Snapshot()
	if received <= 1 || received == sent+1 {
		t.Fatalf("received %d of %d: the buffer did not overflow as planned", received, sent)
	}
	if snap.SocketDrops != float64(sent+1-received) || snap.Datagrams != float64(received) {
		t.Fatalf("socket drops %v, want %d (sent %d, received %d)", snap.SocketDrops, sent+1-received, sent+1, received)
	}
	// A new socket starts from 0 and keeps what was counted.
	st.NewSocket()
	st.handleBatch(batch{drops: 3, stamped: true}) // a datagram of the new socket stamped with 3 drops
	if got := st.Snapshot().SocketDrops; got != float64(sent+1-received+3) {
		t.Fatalf("after a new socket: %v", got)
	}
}
