package gunicorn

import (
	"fmt"
	"net"
	"testing"
	"time"
)

func groupOf(snap StatsdSnapshot, env string) *StatsdGroup {
	for i := range snap.Groups {
		if snap.Groups[i].TagValues[0] == env {
			return &snap.Groups[i]
		}
	}
	return nil
}

// TestStatsdJunkTagsCannotLockOutRealSeries replays the probe of issue 10: with the tag label
// env and the default limit of 16, 16 junk values fill the limit; afterwards 100 env:prod
// lines and 100 untagged lines must all be counted (they were dropped as series_limit until
// a restart). Then junk keeps arriving, one new value between two prod lines: prod, updated
// more recently than any junk, is never the one evicted.
func TestStatsdJunkTagsCannotLockOutRealSeries(t *testing.T) {
	s := NewStatsdState(StatsdConfig{TagLabels: []string{"env"}})
	for i := 0; i < DefaultMaxSeries; i++ {
		s.HandleDatagram(fmt.Appendf(nil, "gunicorn.requests:1|c|#env:junk%d", i))
	}
	for i := 0; i < 100; i++ {
		s.HandleDatagram([]byte("gunicorn.requests:1|c|@1.0|#env:prod"))
		s.HandleDatagram([]byte("gunicorn.requests:1|c|@1.0"))
	}
	snap := s.Snapshot()
	if prod, untagged := groupOf(snap, "prod"), groupOf(snap, ""); prod == nil || prod.Requests != 100 || untagged == nil || untagged.Requests != 100 {
		t.Fatalf("prod %+v, untagged %+v: want 100 requests each (dropped %v)", prod, untagged, snap.Dropped)
	}
	// The oldest junk value made room for prod; the untagged series takes no place.
	if snap.Evicted != 1 || len(snap.Groups) != DefaultMaxSeries+1 || groupOf(snap, "junk0") != nil || groupOf(snap, "junk1") == nil {
		t.Fatalf("evicted %v, %d groups, want 1 and %d without junk0", snap.Evicted, len(snap.Groups), DefaultMaxSeries+1)
	}
	for i := 0; i < 100; i++ {
		s.HandleDatagram(fmt.Appendf(nil, "gunicorn.requests:1|c|#env:more%d", i))
		s.HandleDatagram([]byte("gunicorn.requests:1|c|@1.0|#env:prod"))
	}
	snap = s.Snapshot()
	if prod := groupOf(snap, "prod"); prod == nil || prod.Requests != 200 {
		t.Fatalf("prod %+v, want 200 requests", prod)
	}
	if snap.Evicted != 101 || len(snap.Groups) != DefaultMaxSeries+1 || snap.Dropped[DropValue] != 0 {
		t.Fatalf("evicted %v, %d groups, dropped %v; want 101 and %d", snap.Evicted, len(snap.Groups), snap.Dropped, DefaultMaxSeries+1)
	}
	for i := 0; i < 100-(DefaultMaxSeries-1); i++ {
		if groupOf(snap, fmt.Sprintf("more%d", i)) != nil {
			t.Fatalf("more%d kept: the newest junk values should be", i)
		}
	}
}

// TestStatsdDroppedLineEvictsNothing: a line that is dropped (here a worker count out of
// bounds) brings no new combination and evicts nothing.
func TestStatsdDroppedLineEvictsNothing(t *testing.T) {
	s := NewStatsdState(StatsdConfig{TagLabels: []string{"env"}, MaxSeries: 1})
	s.HandleDatagram([]byte("gunicorn.workers:4|g|#env:prod"))
	s.HandleDatagram([]byte("gunicorn.workers:1e308|g|#env:junk\ngunicorn.workers:+100001|g|#env:junk\ngunicorn.workers:-5|g|#env:junk\ngunicorn.backlog:-1|h|#env:junk"))
	snap := s.Snapshot()
	if snap.Evicted != 0 || snap.Dropped[DropValue] != 4 || len(snap.Groups) != 1 || groupOf(snap, "prod").Workers != 4 {
		t.Fatalf("evicted %v, dropped %v, groups %+v", snap.Evicted, snap.Dropped, snap.Groups)
	}
	// +1 on a new combination is a valid change from 0: it takes prod's place.
	s.HandleDatagram([]byte("gunicorn.workers:+1|g|#env:new"))
	if snap = s.Snapshot(); snap.Evicted != 1 || len(snap.Groups) != 1 || groupOf(snap, "new").Workers != 1 {
		t.Fatalf("evicted %v, groups %+v", snap.Evicted, snap.Groups)
	}
}

// TestStatsdSocketDropsAtScrape overflows a real socket's receive buffer and checks that a
// snapshot reports the kernel's drops at once, with no datagram received after them (they
// were learnt only from the next datagram's SO_RXQ_OVFL stamp before): sent = received +
// dropped, exactly (loopback loses nothing else).
func TestStatsdSocketDropsAtScrape(t *testing.T) {
	for _, network := range []string{"udp", "unixgram"} {
		t.Run(network, func(t *testing.T) {
			addr := "127.0.0.1:0"
			if network == "unixgram" {
				addr = t.TempDir() + "/s.sock"
			}
			conn, err := net.ListenPacket(network, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			st := NewStatsdState(StatsdConfig{})
			st.AttachSocket(kernelDrops(conn))
			_ = conn.(interface{ SetReadBuffer(int) error }).SetReadBuffer(4096)
			c, err := net.Dial(network, conn.LocalAddr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if network == "unixgram" {
				// A unix datagram sender waits for room instead of the kernel dropping:
				// nothing is lost, and the count must say 0.
				_ = c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
			}
			sent := 0
			for i := 0; i < 500; i++ {
				if _, err := c.Write([]byte("gunicorn.requests:1|c|@1.0")); err != nil {
					if network == "unixgram" {
						break
					}
					t.Fatal(err)
				}
				sent++
			}
			dropped := st.Snapshot().SocketDrops
			buf := make([]byte, maxDatagram)
			received := 0
			for {
				_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				if _, _, err := conn.ReadFrom(buf); err != nil {
					break
				}
				received++
			}
			if network == "udp" && (received <= 1 || received == sent) {
				t.Fatalf("received %d of %d: the buffer did not overflow as planned", received, sent)
			}
			if dropped != float64(sent-received) {
				t.Fatalf("socket drops %v at the snapshot, want %d (sent %d, received %d)", dropped, sent-received, sent, received)
			}
			// The socket closes: the last count stays.
			st.DetachSocket()
			conn.Close()
			if got := st.Snapshot().SocketDrops; got != dropped {
				t.Fatalf("after the socket closed: %v, want %v", got, dropped)
			}
		})
	}
}

// TestSocketDropsOrderAndWrap: a stale reading (a datagram stamped before a drop, handled
// after a scrape read the count) does not count as a wrap of the 32-bit counter; a real wrap
// does.
func TestSocketDropsOrderAndWrap(t *testing.T) {
	var d socketDrops
	for _, c := range []struct {
		set  uint32
		want uint64
	}{{5, 5}, {7, 7}, {6, 7}, {0, 7}, {1<<31 + 6, 1<<31 + 6}, {1<<32 - 2, 1<<32 - 2}, {3, 1<<32 + 3},
		{1<<32 - 1, 1<<32 + 3}, {4, 1<<32 + 4}} {
		d.set(c.set)
		if d.total() != c.want {
			t.Fatalf("after %d: %d, want %d", c.set, d.total(), c.want)
		}
	}
}
