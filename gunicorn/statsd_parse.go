package gunicorn

import (
	"bytes"
	"math"
	"strconv"
)

// StatsdMetric is one of the metrics gunicorn's statsd instrumentation sends.
type StatsdMetric uint8

// The metrics gunicorn sends (gunicorn/instrument/statsd.py), after any --statsd-prefix.
const (
	StatsdRequests StatsdMetric = iota + 1 // gunicorn.requests:1|c|@1.0
	StatsdStatus                           // gunicorn.request.status.<code>:1|c|@1.0
	StatsdDuration                         // gunicorn.request.duration:<ms>|ms
	StatsdWorkers                          // gunicorn.workers:<n>|g
	StatsdLog                              // gunicorn.log.<level>:1|c|@1.0
	StatsdBacklog                          // gunicorn.backlog:<n>|h (gunicorn 24.1+)
)

// Reasons a statsd line is dropped. They are label values: a fixed, small set.
const (
	DropSyntax     = "syntax"         // not name:value|type
	DropValue      = "value"          // not a finite number, negative where it cannot be, over a cap, or a count that would not stay finite
	DropType       = "type"           // a type gunicorn does not send for this metric
	DropSampleRate = "sample_rate"    // @rate not in [MinSampleRate, 1]
	DropUnknown    = "unknown_metric" // not one of gunicorn's metrics (or an unknown level or status)
	DropTooLong    = "too_long"       // line or datagram longer than the limits
	DropTags       = "tags"           // tag section unusable (too many tags, invalid UTF-8)
)

// DropReasons lists every reason, so counters can start at 0 for each. There is no reason
// for a series limit: a new combination of tag labels is always taken, in the place of the
// least recently updated one (see StatsdConfig.MaxSeries).
var DropReasons = []string{DropSyntax, DropValue, DropType, DropSampleRate, DropUnknown, DropTooLong, DropTags}

// LogLevels are the levels gunicorn counts as gunicorn.log.<level>.
var LogLevels = []string{"critical", "error", "warning", "exception", "info", "debug"}

// MaxStatsdLine is the longest line accepted.
const MaxStatsdLine = 2048

// Bounds on what one line may add, so that no line (gunicorn sends counters of 1 at rate 1)
// can push a counter to a huge or infinite value for good.
const (
	// MinSampleRate is the smallest @rate accepted: a line stands for at most a million events.
	MinSampleRate = 1e-6
	// MaxCounterValue is the largest counter value accepted; it must be a whole number.
	MaxCounterValue = 1e6
	// MaxDurationMillis is the longest duration accepted, in milliseconds (about 11.6 days).
	MaxDurationMillis = 1e9
	// MaxWorkerCount is the largest worker count accepted (gunicorn.workers, a whole number
	// from 0), also as the result of a relative change. gunicorn runs a few to a few hundred.
	MaxWorkerCount = 100000
	// MaxBacklog is the largest listen backlog accepted (gunicorn.backlog, a whole number
	// from 0); the kernel caps a listen queue at net.core.somaxconn, far below.
	MaxBacklog = 1e9
)

// StatsdSample is one parsed line.
type StatsdSample struct {
	Metric   StatsdMetric
	Code     int     // StatsdStatus: the HTTP status code, 100-599
	Level    string  // StatsdLog: one of LogLevels
	Value    float64 // as sent: milliseconds for StatsdDuration
	Relative bool    // a gauge sent as +n or -n changes the value instead of setting it
	Rate     float64 // sample rate, 1 when absent
	Tags     []byte  // the dogstatsd tag section without "#", nil when absent
}

// StatsdError is a dropped line with its reason.
type StatsdError struct {
	Reason string
	Msg    string
}

func (e *StatsdError) Error() string { return e.Reason + ": " + e.Msg }

func drop(reason, msg string) error { return &StatsdError{Reason: reason, Msg: msg} }

var gunicornDot = []byte("gunicorn.")

// ParseStatsdLine parses one line, `<prefix>gunicorn.<metric>:<value>|<type>[|@<rate>][|#<tags>]`.
// The prefix is anything ending in "." (gunicorn's --statsd-prefix) and is dropped.
func ParseStatsdLine(line []byte) (StatsdSample, error) {
	var s StatsdSample
	if len(line) > MaxStatsdLine {
		return s, drop(DropTooLong, "line longer than "+strconv.Itoa(MaxStatsdLine)+" bytes")
	}
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return s, drop(DropSyntax, "no name:value")
	}
	name, rest := line[:colon], line[colon+1:]
	// up to 8 sections, split without allocating
	if k := bytes.Count(rest, []byte{'|'}); k < 1 || k > 7 {
		return s, drop(DropSyntax, "want value|type[|@rate][|#tags]")
	}
	valueText, rest, _ := bytes.Cut(rest, []byte{'|'})
	typBytes, rest, more := bytes.Cut(rest, []byte{'|'})
	typ := string(typBytes)
	s.Rate = 1
	for more {
		var sec []byte
		sec, rest, more = bytes.Cut(rest, []byte{'|'})
		switch {
		case len(sec) > 1 && sec[0] == '@':
			r, err := strconv.ParseFloat(string(sec[1:]), 64)
			if err != nil || !(r >= MinSampleRate && r <= 1) {
				return s, drop(DropSampleRate, "sample rate "+strconv.Quote(string(sec)))
			}
			s.Rate = r
		case len(sec) > 0 && sec[0] == '#':
			s.Tags = sec[1:]
		case len(sec) > 0 && (sec[0] == 'c' || sec[0] == 'T'):
			// dogstatsd container id (c:...) and timestamp (T...): not used
		default:
			return s, drop(DropSyntax, "unknown section "+strconv.Quote(string(sec)))
		}
	}
	if err := classify(&s, name); err != nil {
		return s, err
	}
	if !typeFits(s.Metric, typ) {
		return s, drop(DropType, "type "+strconv.Quote(typ)+" for "+strconv.Quote(string(name)))
	}
	if s.Metric == StatsdWorkers && len(valueText) > 0 && (valueText[0] == '+' || valueText[0] == '-') {
		s.Relative = true
	}
	v, err := strconv.ParseFloat(string(valueText), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return s, drop(DropValue, "value "+strconv.Quote(string(valueText)))
	}
	if v < 0 && !s.Relative {
		return s, drop(DropValue, "negative value "+strconv.Quote(string(valueText)))
	}
	switch s.Metric {
	case StatsdRequests, StatsdStatus, StatsdLog:
		if v > MaxCounterValue || v != math.Trunc(v) {
			return s, drop(DropValue, "counter value "+strconv.Quote(string(valueText))+" is not a whole number up to 1e6")
		}
	case StatsdDuration:
		if v > MaxDurationMillis {
			return s, drop(DropValue, "duration "+strconv.Quote(string(valueText))+" over 1e9 ms")
		}
	case StatsdWorkers:
		if math.Abs(v) > MaxWorkerCount || v != math.Trunc(v) {
			return s, drop(DropValue, "worker count "+strconv.Quote(string(valueText))+" is not a whole number up to 100000")
		}
	case StatsdBacklog:
		if v > MaxBacklog || v != math.Trunc(v) {
			return s, drop(DropValue, "backlog "+strconv.Quote(string(valueText))+" is not a whole number up to 1e9")
		}
	}
	s.Value = v
	return s, nil
}

// classify finds the gunicorn metric in a name after any prefix.
func classify(s *StatsdSample, name []byte) error {
	i := bytes.LastIndex(name, gunicornDot)
	if i < 0 || (i > 0 && name[i-1] != '.') {
		return drop(DropUnknown, "not a gunicorn metric: "+strconv.Quote(string(name)))
	}
	m := string(name[i+len(gunicornDot):])
	switch m {
	case "requests":
		s.Metric = StatsdRequests
		return nil
	case "request.duration":
		s.Metric = StatsdDuration
		return nil
	case "workers":
		s.Metric = StatsdWorkers
		return nil
	case "backlog":
		s.Metric = StatsdBacklog
		return nil
	}
	if code, ok := cutPrefix(m, "request.status."); ok {
		c, err := strconv.Atoi(code)
		if err != nil || len(code) != 3 || c < 100 || c > 599 {
			return drop(DropUnknown, "status code "+strconv.Quote(code))
		}
		s.Metric, s.Code = StatsdStatus, c
		return nil
	}
	if level, ok := cutPrefix(m, "log."); ok {
		for _, l := range LogLevels {
			if level == l {
				s.Metric, s.Level = StatsdLog, l
				return nil
			}
		}
		return drop(DropUnknown, "log level "+strconv.Quote(level))
	}
	return drop(DropUnknown, "not a gunicorn metric: "+strconv.Quote(string(name)))
}

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):], true
	}
	return "", false
}

// typeFits accepts the type gunicorn sends for a metric, and the synonyms other statsd
// clients use for timings and histograms.
func typeFits(m StatsdMetric, typ string) bool {
	switch m {
	case StatsdRequests, StatsdStatus, StatsdLog:
		return typ == "c"
	case StatsdDuration, StatsdBacklog:
		return typ == "ms" || typ == "h" || typ == "d"
	case StatsdWorkers:
		return typ == "g"
	}
	return false
}
