package gunicorn

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

// TestStatsdLineBounds: no line can make a counter huge or infinite: sample rates below
// MinSampleRate, counter values that are not whole numbers up to MaxCounterValue, durations
// over MaxDurationMillis and relative gauges that would overflow are dropped and counted.
func TestStatsdLineBounds(t *testing.T) {
	s := NewStatsdState(StatsdConfig{})
	lines := []string{
		"gunicorn.requests:1e308|c|@1e-308",                    // sample_rate
		"gunicorn.requests:1|c|@1e-7",                          // sample_rate
		"gunicorn.requests:1|c|@1e-6",                          // +1e6
		"gunicorn.requests:1e308|c",                            // value: over the cap
		"gunicorn.requests:1.5|c",                              // value: not whole
		"gunicorn.requests:1000000|c",                          // +1e6
		"gunicorn.request.status.200:1000001|c",                // value
		"gunicorn.request.status.200:3|c|@0.5",                 // +6
		"gunicorn.log.error:2.5|c",                             // value
		"gunicorn.log.error:0|c",                               // +0
		"gunicorn.request.duration:1e10|ms",                    // value
		"gunicorn.request.duration:1000000000|ms",              // count 1, sum 1e6 s, no bucket
		"gunicorn.request.duration:5|ms|@0.25",                 // count 4, sum 0.02 s, every bucket 4
		"gunicorn.workers:1e308|g",                             // set
		"gunicorn.workers:+1e308|g",                            // value: would be +Inf
		"gunicorn.requests:1|c|@0.25",                          // +4
		"gunicorn.requests:" + strings.Repeat("9", 400) + "|c", // value: +Inf as parsed
	}
	s.HandleDatagram([]byte(strings.Join(lines, "\n")))
	snap := s.Snapshot()
	want := map[string]float64{DropSyntax: 0, DropValue: 7, DropType: 0, DropSampleRate: 2, DropUnknown: 0,
		DropTooLong: 0, DropTags: 0, DropSeriesLimit: 0}
	if snap.Lines != float64(len(lines)) || !reflect.DeepEqual(snap.Dropped, want) {
		t.Fatalf("lines %v, dropped %v; want %d lines, dropped %v", snap.Lines, snap.Dropped, len(lines), want)
	}
	g := snap.Groups[0]
	if g.Requests != 2000004 {
		t.Errorf("requests %v, want 2000004", g.Requests)
	}
	if !reflect.DeepEqual(g.Status, map[int]float64{200: 6}) || !reflect.DeepEqual(g.Logs, map[string]float64{"error": 0}) {
		t.Errorf("status %v, logs %v", g.Status, g.Logs)
	}
	if g.DurationCount != 5 || g.DurationSum != 1e6+0.02 {
		t.Errorf("durations: count %v sum %v, want 5 and %v", g.DurationCount, g.DurationSum, 1e6+0.02)
	}
	for i, b := range g.Buckets {
		if b != 4 {
			t.Errorf("bucket %v: %v, want 4", DurationBuckets[i], b)
		}
	}
	if g.Workers != 1e308 || math.IsInf(g.Workers, 0) {
		t.Errorf("workers %v, want 1e308", g.Workers)
	}
}
