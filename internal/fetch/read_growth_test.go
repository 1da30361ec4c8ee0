package fetch

import (
	"io"
	"math"
	"runtime"
	"strings"
	"testing"
)

// capacityProbe is an endless peer that records the buffer capacity behind each read: the
// bytes it has handed out plus the room offered to it now.
type capacityProbe struct {
	sent int
	caps []int
}

func (p *capacityProbe) Read(b []byte) (int, error) {
	if c := p.sent + len(b); len(p.caps) == 0 || p.caps[len(p.caps)-1] != c {
		p.caps = append(p.caps, c)
	}
	for i := range b {
		b[i] = 'x'
	}
	p.sent += len(b)
	return len(b), nil
}

// TestReadAllEndlessPeerMemory: reading a peer that never ends costs about the cap, not a
// multiple of it. The buffer never grows past cap+1 bytes, the old and new buffers of a
// growth together stay within 1.5 times that, and all the allocations of the call together
// stay under twice the cap.
func TestReadAllEndlessPeerMemory(t *testing.T) {
	const limit = 10<<20 + 3
	p := &capacityProbe{}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := ReadAll(p, limit)
	runtime.ReadMemStats(&after)
	if ReasonOf(err) != ReasonTooLarge {
		t.Fatalf("reason %q (%v), want too_large", ReasonOf(err), err)
	}
	if p.sent != limit+1 {
		t.Fatalf("read %d bytes, want limit+1 = %d", p.sent, limit+1)
	}
	if last := p.caps[len(p.caps)-1]; last != limit+1 {
		t.Fatalf("last buffer of %d bytes, want limit+1 = %d (all: %v)", last, limit+1, p.caps)
	}
	for i := 1; i < len(p.caps); i++ {
		if p.caps[i] > limit+1 || 2*(p.caps[i-1]+p.caps[i]) > 3*(limit+1) {
			t.Fatalf("growth from %d to %d bytes: over the cap or 1.5x it together (all: %v)", p.caps[i-1], p.caps[i], p.caps)
		}
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc >= 2*limit {
		t.Fatalf("%d bytes allocated, want under twice the %d byte cap (buffers: %v)", alloc, limit, p.caps)
	}
}

// The growth schedule still fits small caps and small documents.
func TestReadAllSmall(t *testing.T) {
	for _, limit := range []int64{0, 1, 2, 63, 64, 511, 512, 513, 4096} {
		for _, n := range []int64{0, 1, limit - 1, limit, limit + 1, 3*limit + 7} {
			if n < 0 {
				continue
			}
			p := &capacityProbe{}
			b, err := ReadAll(&limitedProbe{p, n}, limit)
			if n > limit {
				if ReasonOf(err) != ReasonTooLarge || p.sent != int(limit)+1 {
					t.Fatalf("limit %d, %d bytes: read %d, %v; want too_large after limit+1", limit, n, p.sent, err)
				}
				continue
			}
			if err != nil || int64(len(b)) != n {
				t.Fatalf("limit %d, %d bytes: got %d, %v", limit, n, len(b), err)
			}
		}
	}
}

// limitedProbe ends the probe's stream after n bytes.
type limitedProbe struct {
	p *capacityProbe
	n int64
}

func (l *limitedProbe) Read(b []byte) (int, error) {
	if left := l.n - int64(l.p.sent); left <= 0 {
		return 0, io.EOF
	} else if int64(len(b)) > left {
		b = b[:left]
	}
	return l.p.Read(b)
}

// The largest caps do not overflow: the stream is read as it is.
func TestReadAllHugeLimit(t *testing.T) {
	for _, limit := range []int64{math.MaxInt64, math.MaxInt64 - 1, 1 << 62} {
		b, err := ReadAll(strings.NewReader("12345"), limit)
		if err != nil || string(b) != "12345" {
			t.Fatalf("limit %d: %q, %v", limit, b, err)
		}
	}
}
