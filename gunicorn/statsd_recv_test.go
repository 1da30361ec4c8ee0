package gunicorn

import (
	"bytes"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// readAll reads batches until want datagrams arrived (or a read waits 2 s), handing each
// batch to st; it returns the number of datagrams of each read.
func readAll(t *testing.T, conn net.PacketConn, st *StatsdState, want int) []int {
	t.Helper()
	r, err := newBatchReader(conn)
	if err != nil {
		t.Fatal(err)
	}
	var reads []int
	for got := 0; got < want; {
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := r.read()
		if err != nil {
			t.Fatalf("after %d of %d datagrams: %v", got, want, err)
		}
		st.handleBatch(r.batch(n, nil))
		reads = append(reads, n)
		got += n
	}
	return reads
}

// TestStatsdBatchReadUDP queues more datagrams than one read takes, each with a different
// status code, so that a datagram counted twice, lost, or overwritten by another in a shared
// buffer shows; one read must return a full batch.
func TestStatsdBatchReadUDP(t *testing.T) {
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, err := net.Dial("udp", conn.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const sent = 2*batchSize + 3
	for i := range sent {
		d := fmt.Appendf(nil, "gunicorn.request.status.%d:1|c", 200+i)
		if i%5 == 0 { // a few datagrams of several lines, some of them bad
			d = fmt.Appendf(d, "\ngunicorn.requests:1|c\r\njunk\n\ngunicorn.requests:x|c")
		}
		if _, err := c.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	st := NewStatsdState(StatsdConfig{})
	reads := readAll(t, conn, st, sent)
	if reads[0] != batchSize {
		t.Errorf("reads took %v datagrams: the first should take a whole batch of %d", reads, batchSize)
	}
	snap := st.Snapshot()
	multi := (sent + 4) / 5
	if snap.Datagrams != sent || snap.Lines != float64(sent+3*multi) {
		t.Errorf("datagrams %v lines %v, want %d and %d", snap.Datagrams, snap.Lines, sent, sent+3*multi)
	}
	if snap.Dropped[DropSyntax] != float64(multi) || snap.Dropped[DropValue] != float64(multi) {
		t.Errorf("dropped %v, want %d syntax and %d value", snap.Dropped, multi, multi)
	}
	g := snap.Groups[0]
	if g.Requests != float64(multi) || len(g.Status) != sent {
		t.Errorf("requests %v (want %d), %d status codes (want %d)", g.Requests, multi, len(g.Status), sent)
	}
	for i := range sent {
		if g.Status[200+i] != 1 {
			t.Errorf("status %d counted %v times", 200+i, g.Status[200+i])
		}
	}
}

// TestStatsdBatchReadTooLong: a unix datagram longer than a slot, between small ones in the
// same read, is dropped whole as too_long; its neighbours are counted.
func TestStatsdBatchReadTooLong(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	conn, err := net.ListenPacket("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, err := net.Dial("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	big := append([]byte("gunicorn.requests:1|c\n"), bytes.Repeat([]byte("x"), maxDatagram)...)
	dgs := [][]byte{[]byte("gunicorn.requests:1|c"), big, []byte("gunicorn.requests:2|c\nnope"), big[:maxDatagram],
		[]byte("gunicorn.request.status.500:1|c")}
	for _, d := range dgs {
		if _, err := c.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	st := NewStatsdState(StatsdConfig{})
	reads := readAll(t, conn, st, len(dgs))
	if len(reads) != 1 {
		t.Errorf("reads took %v datagrams, want all %d in one", reads, len(dgs))
	}
	snap := st.Snapshot()
	g := snap.Groups[0]
	// big[:maxDatagram] fits exactly: its first line counts, the rest is one line too long.
	if snap.Datagrams != 5 || snap.Dropped[DropTooLong] != 2 || snap.Dropped[DropSyntax] != 1 ||
		g.Requests != 4 || g.Status[500] != 1 {
		t.Errorf("datagrams %v, dropped %v, requests %v, status %v", snap.Datagrams, snap.Dropped, g.Requests, g.Status)
	}
}

// TestStatsdKnownLineAllocatesNothing: a line of a combination already kept, tagged or not,
// is parsed and counted without allocating (the receive path handles one per datagram).
func TestStatsdKnownLineAllocatesNothing(t *testing.T) {
	s := NewStatsdState(StatsdConfig{TagLabels: []string{"env", "svc"}})
	lines := [][]byte{[]byte("gunicorn.request.status.200:1|c|@1.0|#env:prod,svc:web,host:a"),
		[]byte("app.gunicorn.request.duration:12.5|ms"), []byte("gunicorn.requests:1|c|#svc:web")}
	b := batch{datagrams: lines}
	s.handleBatch(b) // the combinations are new once
	// AllocsPerRun runs it once more to warm up, then 100 times
	if allocs := testing.AllocsPerRun(100, func() { s.handleBatch(b) }); allocs != 0 {
		t.Errorf("%v allocations per batch, want 0", allocs)
	}
	if got := s.Snapshot(); got.Lines != 3*(1+1+100) || len(got.Groups) != 3 {
		t.Errorf("lines %v, groups %d", got.Lines, len(got.Groups))
	}
}
