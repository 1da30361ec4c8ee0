package gunicorn

import (
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
		"gunicorn.workers:1e308|g",                             // value: over the cap
		"gunicorn.workers:100001|g",                            // value: over the cap
		"gunicorn.workers:2.5|g",                               // value: not whole
		"gunicorn.workers:100000|g",                            // set
		"gunicorn.workers:+1|g",                                // value: over the cap
		"gunicorn.workers:-100000|g",                           // 0
		"gunicorn.workers:-1|g",                                // value: below 0
		"gunicorn.workers:+1e308|g",                            // value: over the cap
		"gunicorn.workers:+7|g",                                // 7
		"gunicorn.backlog:1e308|h",                             // value: over the cap
		"gunicorn.backlog:1000000001|h",                        // value: over the cap
		"gunicorn.backlog:0.5|h",                               // value: not whole
		"gunicorn.backlog:-1|h",                                // value: negative
		"gunicorn.backlog:1000000000|h",                        // set
		"gunicorn.requests:1|c|@0.25",                          // +4
		"gunicorn.requests:" + strings.Repeat("9", 400) + "|c", // value: +Inf as parsed
	}
	s.HandleDatagram([]byte(strings.Join(lines, "\n")))
	snap := s.Snapshot()
	want := map[string]float64{DropSyntax: 0, DropValue: 16, DropType: 0, DropSampleRate: 2, DropUnknown: 0,
		DropTooLong: 0, DropTags: 0}
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
	if !g.HasWorkers || g.Workers != 7 {
		t.Errorf("workers %v (set %v), want 7", g.Workers, g.HasWorkers)
	}
	if !g.HasBacklog || g.Backlog != 1e9 {
		t.Errorf("backlog %v (set %v), want 1e9", g.Backlog, g.HasBacklog)
	}
}
