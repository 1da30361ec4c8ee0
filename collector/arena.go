package collector

import dto "github.com/prometheus/client_model/go"

// An arena hands out the protobuf structs of one source's series from slices allocated in
// growing chunks, instead of a few small allocations per series: a 64-worker uWSGI scrape
// makes about 2,000 series, which become about 50 allocations. Everything it hands out lives
// as long as the request that encodes it.
type arena struct {
	metrics   chunk[dto.Metric]
	gauges    chunk[dto.Gauge]
	counters  chunk[dto.Counter]
	untyped   chunk[dto.Untyped]
	summaries chunk[dto.Summary]
	hists     chunk[dto.Histogram]
	buckets   chunk[dto.Bucket]
	pairs     chunk[dto.LabelPair]
	strs      chunk[string]
	floats    chunk[float64]
	uints     chunk[uint64]
	pairPtrs  slab[*dto.LabelPair]
	bucketPtr slab[*dto.Bucket]
}

// chunkMax bounds a chunk (in elements); chunks start at 8 and double up to it.
const chunkMax = 1024

// chunk hands out *T one at a time.
type chunk[T any] struct {
	free []T
	size int
}

func (c *chunk[T]) get() *T {
	if len(c.free) == 0 {
		c.size = min(max(2*c.size, 8), chunkMax)
		c.free = make([]T, c.size)
	}
	p := &c.free[0]
	c.free = c.free[1:]
	return p
}

// slab hands out slices of n elements whose capacity is n, so that appending to one never
// writes over the next.
type slab[T any] struct {
	free []T
	size int
}

func (s *slab[T]) get(n int) []T {
	if n == 0 {
		return nil
	}
	if len(s.free) < n {
		s.size = min(max(2*s.size, 32), 4*chunkMax)
		s.free = make([]T, max(s.size, n))
	}
	out := s.free[:n:n]
	s.free = s.free[n:]
	return out
}

func (a *arena) str(v string) *string {
	p := a.strs.get()
	*p = v
	return p
}

func (a *arena) float(v float64) *float64 {
	p := a.floats.get()
	*p = v
	return p
}

func (a *arena) uint(v uint64) *uint64 {
	p := a.uints.get()
	*p = v
	return p
}

// value sets m's value as a series of type t holds it (as client_golang's const metrics do).
func (a *arena) value(m *dto.Metric, t dto.MetricType, v float64) {
	switch t {
	case dto.MetricType_GAUGE:
		g := a.gauges.get()
		g.Value = a.float(v)
		m.Gauge = g
	case dto.MetricType_COUNTER:
		c := a.counters.get()
		c.Value = a.float(v)
		m.Counter = c
	case dto.MetricType_UNTYPED:
		u := a.untyped.get()
		u.Value = a.float(v)
		m.Untyped = u
	default:
		panic("a single value for a metric of type " + t.String())
	}
}
