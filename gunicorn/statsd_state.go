package gunicorn

import (
	"bytes"
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
	// DefaultMaxSeries is the default number of distinct tag-label combinations.
	DefaultMaxSeries = 16
)

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// StatsdConfig tunes the aggregation.
type StatsdConfig struct {
	// TagLabels are the dogstatsd tag keys kept as labels; every other tag is ignored.
	TagLabels []string
	// MaxSeries bounds the distinct combinations of TagLabels values; lines bringing a new
	// combination beyond it are dropped (reason series_limit). 0 means DefaultMaxSeries.
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
	Groups       []StatsdGroup      // sorted by TagValues
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
	groups    map[string]*StatsdGroup
	// socket drops: the kernel's count is per socket and 32 bits wide; dropsBase carries
	// what earlier sockets (or wraps) counted.
	dropsBase, dropsLast uint64
}

// SetSocketDrops records the kernel's cumulative count of datagrams the current socket
// dropped (SO_RXQ_OVFL).
func (s *StatsdState) SetSocketDrops(n uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if uint64(n) < s.dropsLast { // wrapped
		s.dropsBase += 1 << 32
	}
	s.dropsLast = uint64(n)
}

// NewSocket starts counting socket drops of a new socket from 0 without losing the past.
func (s *StatsdState) NewSocket() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropsBase += s.dropsLast
	s.dropsLast = 0
}

// NewStatsdState returns an empty state; cfg must have passed Check.
func NewStatsdState(cfg StatsdConfig) *StatsdState {
	if cfg.MaxSeries == 0 {
		cfg.MaxSeries = DefaultMaxSeries
	}
	s := &StatsdState{cfg: cfg, now: time.Now, dropped: map[string]float64{}, groups: map[string]*StatsdGroup{}}
	for _, r := range DropReasons {
		s.dropped[r] = 0
	}
	return s
}

// HandleDatagram parses and aggregates one datagram of newline-separated lines.
func (s *StatsdState) HandleDatagram(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.datagrams++
	s.last = s.now()
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
	values, ok := s.tagValues(sample.Tags)
	if !ok {
		return DropTags
	}
	key := strings.Join(values, "\xff")
	g := s.groups[key]
	if g == nil {
		if len(s.groups) >= s.cfg.MaxSeries {
			return DropSeriesLimit
		}
		g = &StatsdGroup{TagValues: values, Status: map[int]float64{}, Logs: map[string]float64{},
			Buckets: make([]float64, len(DurationBuckets))}
		s.groups[key] = g
	}
	// Nothing is changed by a line that would leave a value not finite.
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
		if !finite(v) {
			return DropValue
		}
		g.Workers, g.HasWorkers = v, true
	case StatsdBacklog:
		g.Backlog, g.HasBacklog = sample.Value, true
	}
	return ""
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// tagValues picks the configured tag labels out of a dogstatsd tag section.
func (s *StatsdState) tagValues(tags []byte) ([]string, bool) {
	values := make([]string, len(s.cfg.TagLabels))
	if len(tags) == 0 {
		return values, true
	}
	if bytes.Count(tags, []byte{','}) >= maxTags {
		return nil, false
	}
	for _, t := range bytes.Split(tags, []byte{','}) {
		k, v, _ := bytes.Cut(t, []byte{':'})
		for i, want := range s.cfg.TagLabels {
			if string(k) != want {
				continue
			}
			if len(v) > maxTagValueLen || !utf8.Valid(v) {
				return nil, false
			}
			values[i] = string(v)
		}
	}
	return values, true
}

// Snapshot copies the state.
func (s *StatsdState) Snapshot() StatsdSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := StatsdSnapshot{Datagrams: s.datagrams, Lines: s.lines, LastDatagram: s.last,
		SocketDrops: float64(s.dropsBase + s.dropsLast),
		Dropped:     make(map[string]float64, len(s.dropped))}
	for k, v := range s.dropped {
		snap.Dropped[k] = v
	}
	for _, g := range s.groups {
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
