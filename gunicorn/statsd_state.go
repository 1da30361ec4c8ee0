package gunicorn

import (
	"bytes"
	"container/list"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// DurationBuckets are the upper bounds, in seconds, of the request duration histogram.
var DurationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

const (
	maxTags        = 32  // tags per line
	maxTagValueLen = 128 // bytes of one tag value kept as a label value
	// DefaultMaxSeries is the default number of tag-label combinations kept besides the
	// untagged one.
	DefaultMaxSeries = 16
)

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// StatsdConfig tunes the aggregation.
type StatsdConfig struct {
	// TagLabels are the dogstatsd tag keys kept as labels; every other tag is ignored.
	TagLabels []string
	// MaxSeries bounds the combinations of TagLabels values kept at once, besides the
	// untagged one (every tag label empty), which always has its place. A line bringing a
	// new combination when MaxSeries are kept takes the place of the least recently updated
	// one, which is dropped (counted as evicted). So values that stop arriving (a burst of
	// junk, a retired deployment) make way for the ones that keep arriving: nothing can fill
	// the limit so that real traffic is refused. A combination that comes back after its
	// eviction starts again from 0, which Prometheus reads as a counter reset. 0 means
	// DefaultMaxSeries.
	MaxSeries int
}

// Check validates the configuration. reserved are label names the caller uses itself.
func (c StatsdConfig) Check(reserved ...string) error {
	seen := map[string]bool{}
	for _, r := range reserved {
		seen[r] = true
	}
	for _, k := range c.TagLabels {
		if !labelName.MatchString(k) || strings.HasPrefix(k, "__") {
			return fmt.Errorf("tag %q cannot be a label name (want [a-zA-Z_][a-zA-Z0-9_]*)", k)
		}
		if seen[k] {
			return fmt.Errorf("tag label %q is listed twice or clashes with a label the exporter sets", k)
		}
		seen[k] = true
	}
	if c.MaxSeries < 0 {
		return fmt.Errorf("the series limit must not be negative, got %d", c.MaxSeries)
	}
	return nil
}

// StatsdGroup is what was received for one combination of tag-label values.
type StatsdGroup struct {
	TagValues []string // in the order of StatsdConfig.TagLabels
	Requests  float64
	Status    map[int]float64    // by HTTP status code
	Logs      map[string]float64 // by level
	// Duration histogram: Buckets[i] counts durations <= DurationBuckets[i] (cumulative),
	// DurationCount every duration, DurationSum their sum in seconds.
	Buckets       []float64
	DurationCount float64
	DurationSum   float64
	Workers       float64
	HasWorkers    bool
	Backlog       float64
	HasBacklog    bool
}

// StatsdSnapshot is a copy of the state at one moment.
type StatsdSnapshot struct {
	Datagrams    float64
	Lines        float64
	Dropped      map[string]float64 // by reason, every reason present
	LastDatagram time.Time          // zero before the first datagram
	SocketDrops  float64            // datagrams the kernel dropped: the receive buffer was full
	// Evicted counts tag-label combinations dropped to make room for a new one.
	Evicted float64
	Groups  []StatsdGroup // sorted by TagValues
}

// StatsdState aggregates datagrams. It is safe for concurrent use; its memory is bounded
// by the series limit whatever is received.
type StatsdState struct {
	cfg StatsdConfig
	now func() time.Time

	mu        sync.Mutex
	datagrams float64
	lines     float64
	dropped   map[string]float64
	last      time.Time
	groups    map[string]*statsdSeries
	// recent orders the tagged combinations, most recently updated first; the untagged
	// one is not in it and never evicted.
	recent  *list.List
	evicted float64
	drops   socketDrops
	// scratch of handleLine, kept to allocate nothing for a line of a known combination
	values [][]byte // tag-label values of the line, in the order of cfg.TagLabels
	key    []byte   // the values joined by 0xff: the key of s.groups
}

// statsdSeries is one combination of tag-label values and its place in the recency list.
type statsdSeries struct {
	StatsdGroup
	key  string
	elem *list.Element // nil for the untagged combination
}

// NewStatsdState returns an empty state; cfg must have passed Check.
func NewStatsdState(cfg StatsdConfig) *StatsdState {
	if cfg.MaxSeries == 0 {
		cfg.MaxSeries = DefaultMaxSeries
	}
	s := &StatsdState{cfg: cfg, now: time.Now, dropped: map[string]float64{}, groups: map[string]*statsdSeries{}, recent: list.New(),
		values: make([][]byte, len(cfg.TagLabels))}
	for _, r := range DropReasons {
		s.dropped[r] = 0
	}
	return s
}

// HandleDatagram parses and aggregates one datagram of newline-separated lines.
func (s *StatsdState) HandleDatagram(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = s.now()
	s.handleDatagram(b)
}

// batch is what one read of the socket returned.
type batch struct {
	datagrams [][]byte // received whole
	tooLong   int      // datagrams the socket cut short: dropped whole
	drops     uint32   // the socket's drop count stamped on the last datagram (SO_RXQ_OVFL)
	stamped   bool     // whether drops is set
}

// handleBatch aggregates the datagrams of one read under one lock.
func (s *StatsdState) handleBatch(b batch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b.stamped {
		s.drops.set(b.drops)
	}
	s.datagrams += float64(b.tooLong)
	s.dropped[DropTooLong] += float64(b.tooLong)
	if len(b.datagrams) == 0 {
		return
	}
	s.last = s.now()
	for _, d := range b.datagrams {
		s.handleDatagram(d)
	}
}

// handleDatagram aggregates one datagram; s.mu is held.
func (s *StatsdState) handleDatagram(b []byte) {
	s.datagrams++
	for len(b) > 0 {
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			continue
		}
		s.lines++
		if reason := s.handleLine(line); reason != "" {
			s.dropped[reason]++
		}
	}
}

// Drop counts a datagram dropped before parsing (e.g. truncated by the socket).
func (s *StatsdState) Drop(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.datagrams++
	s.dropped[reason]++
}

func (s *StatsdState) handleLine(line []byte) string {
	sample, err := ParseStatsdLine(line)
	if err != nil {
		return err.(*StatsdError).Reason
	}
	n := 1 / sample.Rate // events this line stands for
	inc := sample.Value * n
	if sample.Metric == StatsdDuration {
		inc = sample.Value / 1000 * n
	}
	if !finite(n) || !finite(inc) { // the parser's bounds keep both finite; never trust it
		return DropValue
	}
	if !s.tagValues(sample.Tags) {
		return DropTags
	}
	s.key = s.key[:0]
	for i, v := range s.values {
		if i > 0 {
			s.key = append(s.key, '\xff')
		}
		s.key = append(s.key, v...)
	}
	series := s.groups[string(s.key)] // no allocation for the lookup
	if series == nil {
		// A new combination is checked on a fresh group before it takes a place: a line
		// that is dropped evicts nothing.
		values := make([]string, len(s.values))
		for i, v := range s.values {
			values[i] = string(v)
		}
		series = &statsdSeries{key: string(s.key), StatsdGroup: StatsdGroup{TagValues: values, Status: map[int]float64{},
			Logs: map[string]float64{}, Buckets: make([]float64, len(DurationBuckets))}}
		if reason := apply(&series.StatsdGroup, sample, n, inc); reason != "" {
			return reason
		}
		s.insert(series)
		return ""
	}
	if reason := apply(&series.StatsdGroup, sample, n, inc); reason != "" {
		return reason
	}
	if series.elem != nil {
		s.recent.MoveToFront(series.elem)
	}
	return ""
}

// insert adds a new combination; a tagged one takes the place of the least recently
// updated tagged one when the limit is reached.
func (s *StatsdState) insert(series *statsdSeries) {
	s.groups[series.key] = series
	if untagged(series.TagValues) {
		return
	}
	if s.recent.Len() >= s.cfg.MaxSeries {
		oldest := s.recent.Back()
		delete(s.groups, oldest.Value.(*statsdSeries).key)
		s.recent.Remove(oldest)
		s.evicted++
	}
	series.elem = s.recent.PushFront(series)
}

func untagged(values []string) bool {
	for _, v := range values {
		if v != "" {
			return false
		}
	}
	return true
}

// apply adds a sample standing for n events (inc is its value scaled, in seconds for a
// duration) to g, or changes nothing and returns the reason it is dropped: a value that
// would not stay finite, or a worker count out of [0, MaxWorkerCount].
func apply(g *StatsdGroup, sample StatsdSample, n, inc float64) string {
	switch sample.Metric {
	case StatsdRequests:
		if !finite(g.Requests + inc) {
			return DropValue
		}
		g.Requests += inc
	case StatsdStatus:
		if !finite(g.Status[sample.Code] + inc) {
			return DropValue
		}
		g.Status[sample.Code] += inc
	case StatsdLog:
		if !finite(g.Logs[sample.Level] + inc) {
			return DropValue
		}
		g.Logs[sample.Level] += inc
	case StatsdDuration:
		if !finite(g.DurationCount+n) || !finite(g.DurationSum+inc) {
			return DropValue
		}
		secs := sample.Value / 1000
		for i, ub := range DurationBuckets {
			if secs <= ub {
				g.Buckets[i] += n
			}
		}
		g.DurationCount += n
		g.DurationSum += inc
	case StatsdWorkers:
		v := sample.Value
		if sample.Relative {
			v += g.Workers
		}
		if !finite(v) || v < 0 || v > MaxWorkerCount {
			return DropValue
		}
		g.Workers, g.HasWorkers = v, true
	case StatsdBacklog:
		g.Backlog, g.HasBacklog = sample.Value, true
	}
	return ""
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// tagValues picks the configured tag labels out of a dogstatsd tag section into s.values
// (slices of tags, nil for a label absent); false if the section is unusable.
func (s *StatsdState) tagValues(tags []byte) bool {
	clear(s.values)
	if len(tags) == 0 {
		return true
	}
	if bytes.Count(tags, []byte{','}) >= maxTags {
		return false
	}
	for more := true; more; {
		var t []byte
		t, tags, more = bytes.Cut(tags, []byte{','})
		k, v, _ := bytes.Cut(t, []byte{':'})
		for i, want := range s.cfg.TagLabels {
			if string(k) != want {
				continue
			}
			if len(v) > maxTagValueLen || !utf8.Valid(v) {
				return false
			}
			s.values[i] = v
		}
	}
	return true
}

// Snapshot copies the state.
func (s *StatsdState) Snapshot() StatsdSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshDrops()
	snap := StatsdSnapshot{Datagrams: s.datagrams, Lines: s.lines, LastDatagram: s.last,
		SocketDrops: float64(s.drops.total()), Evicted: s.evicted,
		Dropped: make(map[string]float64, len(s.dropped))}
	for k, v := range s.dropped {
		snap.Dropped[k] = v
	}
	for _, series := range s.groups {
		g := &series.StatsdGroup
		c := *g
		c.TagValues = append([]string(nil), g.TagValues...)
		c.Buckets = append([]float64(nil), g.Buckets...)
		c.Status = make(map[int]float64, len(g.Status))
		for k, v := range g.Status {
			c.Status[k] = v
		}
		c.Logs = make(map[string]float64, len(g.Logs))
		for k, v := range g.Logs {
			c.Logs[k] = v
		}
		snap.Groups = append(snap.Groups, c)
	}
	sort.Slice(snap.Groups, func(i, j int) bool { return slices.Compare(snap.Groups[i].TagValues, snap.Groups[j].TagValues) < 0 })
	return snap
}
