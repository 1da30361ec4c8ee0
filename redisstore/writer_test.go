package redisstore

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wsgi-exporter/wsgi_exporter/internal/redistest"
	"github.com/wsgi-exporter/wsgi_exporter/multiproc"
)

// DebianPython runs the Python side of the tests (the writer, Python's merge, the peer).
const DebianPython = redistest.Python

// startWriter starts a writer (testdata/gpe_writer.py) against srv's database 0 over the socket.
func startWriter(t testing.TB, srv *redistest.Server, args ...string) *redistest.Writer {
	t.Helper()
	return redistest.StartWriter(t, srv, "testdata/gpe_writer.py", passwordFile(t), args...)
}

// TestWriterTotals: four worker processes, each with a known number of requests; the merge
// serves the exact totals, the per-worker gauge with each worker's pid, and counts the bare
// gauge key the writer leaves for its livesum gauge.
func TestWriterTotals(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	counts := []int{25, 50, 75, 100}
	var ws []*redistest.Writer
	for _, n := range counts {
		w := startWriter(t, srv)
		w.Do(fmt.Sprintf("count %d", n))
		ws = append(ws, w)
	}
	s := newStore(t, srv, 0, Options{})
	snap := mustRead(t, s)
	want := map[string]float64{
		`gpe_requests_total{code="200",path="/a"}`:        250,
		`gpe_latency_seconds_bucket{le="0.1",path="/a"}`:  0,
		`gpe_latency_seconds_bucket{le="0.5",path="/a"}`:  250,
		`gpe_latency_seconds_bucket{le="1",path="/a"}`:    250,
		`gpe_latency_seconds_bucket{le="+Inf",path="/a"}`: 250,
		`gpe_latency_seconds_count{path="/a"}`:            250,
		`gpe_latency_seconds_sum{path="/a"}`:              62.5,
		`gpe_in_flight{}`:                                 0,
		// The random mix's metrics without labels exist from the start.
		`mix_plain_total{}`:            0,
		`mix_custom_bucket{le="-1"}`:   0,
		`mix_custom_bucket{le="0"}`:    0,
		`mix_custom_bucket{le="0.5"}`:  0,
		`mix_custom_bucket{le="2"}`:    0,
		`mix_custom_bucket{le="+Inf"}`: 0,
		`mix_custom_count{}`:           0,
		`mix_custom_sum{}`:             0,
	}
	for i, w := range ws {
		want[`gpe_last_request{pid="`+w.PID+`"}`] = float64(counts[i])
	}
	for sample, v := range want {
		if got := value(t, snap.Families, sample); got != v {
			t.Errorf("%s = %v, want %v", sample, got, v)
		}
	}
	if n := len(samples(snap.Families)); n != len(want) {
		t.Errorf("%d samples, want %d:\n%s", n, len(want), strings.Join(samples(snap.Families), "\n"))
	}
	if snap.PIDs != 4 || snap.Dropped[ReasonNoMode] != 4 {
		t.Errorf("pids %d, dropped %v", snap.PIDs, snap.Dropped)
	}
	for _, w := range ws {
		w.Exit()
	}
	// Dead workers' keys stay until their TTL: the totals do not move.
	if v := value(t, mustRead(t, s).Families, `gpe_requests_total{code="200",path="/a"}`); v != 250 {
		t.Errorf("after the workers exited: %v", v)
	}
}

// TestWriterExpiry: a worker's keys expire (its TTL is refreshed only when it writes); the
// default store keeps its counts, the one that drops vanished entries loses them (what the
// Python sidecar serves); when the worker writes again, it is not counted twice.
func TestWriterExpiry(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	busy := startWriter(t, srv)
	busy.Do("count 30")
	idle := startWriter(t, srv, "--ttl", "1")
	idle.Do("count 12")
	keep := newStore(t, srv, 0, Options{})
	drop := newStore(t, srv, 0, Options{DropVanished: true})
	const total = `gpe_requests_total{code="200",path="/a"}`
	for _, s := range []*Store{keep, drop} {
		if v := value(t, mustRead(t, s).Families, total); v != 42 {
			t.Fatalf("before expiry: %v", v)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		keys, _, err := srv.Client(0).Scan(context.Background(), 0, "gunicorn:*:"+idle.PID+":*", 10000).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the idle worker's keys did not expire: %d left", len(keys))
		}
		time.Sleep(100 * time.Millisecond)
	}
	snap := mustRead(t, keep)
	if v := value(t, snap.Families, total); v != 42 {
		t.Errorf("kept after expiry: %v, want 42", v)
	}
	if has(snap.Families, `gpe_last_request{pid="`+idle.PID+`"}`) {
		t.Error("the expired worker's gauge is still served")
	}
	// The idle worker's requests_total, 4 buckets and latency sum, mix_plain_total, and
	// mix_custom's 5 buckets and sum.
	if snap.Held != 13 {
		t.Errorf("held %d, want 13", snap.Held)
	}
	if v := value(t, mustRead(t, drop).Families, total); v != 30 {
		t.Errorf("dropped after expiry: %v, want 30 (the false reset of the sidecar)", v)
	}
	idle.Do("count 3")
	if v := value(t, mustRead(t, keep).Families, total); v != 45 {
		t.Errorf("after the idle worker resumed: %v, want 45", v)
	}
	if v := value(t, mustRead(t, drop).Families, total); v != 45 {
		t.Errorf("dropping store after the idle worker resumed: %v, want 45", v)
	}
}

// pythonMerge prints what prometheus_client's own MultiProcessCollector makes of a
// directory, its files in sorted order.
const pythonMerge = `
import glob, os, sys
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
d = sys.argv[1]
class Sorted:
    def collect(self):
        return MultiProcessCollector.merge(sorted(glob.glob(os.path.join(d, "*.db"))), accumulate=True)
reg = CollectorRegistry()
reg.register(Sorted())
sys.stdout.buffer.write(generate_latest(reg))
`

// TestConformanceWithFiles: worker processes write every value both to a multiprocess
// directory (prometheus_client's own class) and to Redis (the layout); the merge of the
// Redis store equals prometheus_client's merge of the files, and our merge of the files.
func TestConformanceWithFiles(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	dir := t.TempDir()
	for n := range 4 {
		w := startWriter(t, srv, "--files", dir)
		w.Do(fmt.Sprintf("work %d %d", n, 40+7*n))
		w.Do(fmt.Sprintf("count %d", 3+n))
		if n == 3 {
			w.Exit()
		}
	}
	out, err := exec.Command(DebianPython, "-c", pythonMerge, dir).Output()
	if err != nil {
		t.Fatalf("python merge: %v", err)
	}
	want := pySamples(t, out)
	if len(want) < 300 || !strings.Contains(strings.Join(want, "\n"), `path="new\nline"`) {
		t.Fatalf("unexpected Python output (%d samples)", len(want))
	}
	s := newStore(t, srv, 0, Options{})
	for range 2 {
		snap := mustRead(t, s)
		compareLines(t, "redis vs python", samples(snap.Families), want)
		// Three live* gauges left bare per label set and worker, and in_flight per worker.
		if snap.Dropped[ReasonNoMode] == 0 {
			t.Errorf("dropped %v: the writer's bare gauge keys not met?", snap.Dropped)
		}
	}
	files, err := multiproc.NewReader(multiproc.Options{}).Read(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	compareLines(t, "redis vs files", samples(mustRead(t, s).Families), samples(files.Families))
}

func compareLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") == strings.Join(want, "\n") || withinRounding(got, want) {
		return
	}
	g := map[string]bool{}
	for _, l := range got {
		g[l] = true
	}
	w := map[string]bool{}
	for _, l := range want {
		w[l] = true
	}
	var diff []string
	for _, l := range got {
		if !w[l] {
			diff = append(diff, "+ "+l)
		}
	}
	for _, l := range want {
		if !g[l] {
			diff = append(diff, "- "+l)
		}
	}
	if len(diff) > 40 {
		diff = diff[:40]
	}
	t.Errorf("%s: %d samples, want %d; differences:\n%s", what, len(got), len(want), strings.Join(diff, "\n"))
}

// withinRounding reports whether got and want hold the same samples with values equal but
// for the rounding docs/multiproc.md states: the merge's sums are exact (rounded once) where
// Python rounds at each addition, so a sum of n values of one sign may differ by
// gamma(n) = n*2^-53/(1-n*2^-53) relative; n is at most 64 here.
func withinRounding(got, want []string) bool {
	split := func(lines []string) map[string]string {
		m := map[string]string{}
		for _, l := range lines {
			i := strings.LastIndexByte(l, ' ')
			m[l[:i]] = l[i+1:]
		}
		return m
	}
	g, w := split(got), split(want)
	if len(g) != len(w) || len(g) != len(got) {
		return false
	}
	const gamma = 64 * 0x1p-53 / (1 - 64*0x1p-53)
	for k, wv := range w {
		gv, ok := g[k]
		if !ok {
			return false
		}
		if gv == wv {
			continue
		}
		a, err1 := strconv.ParseFloat(gv, 64)
		b, err2 := strconv.ParseFloat(wv, 64)
		if err1 != nil || err2 != nil || (a < 0) != (b < 0) || math.IsInf(a, 0) || math.IsInf(b, 0) ||
			math.Abs(a-b) > gamma*math.Max(math.Abs(a), math.Abs(b)) {
			return false
		}
	}
	return true
}

// pySamples renders a Python exposition as samples renders families.
func pySamples(t testing.TB, expo []byte) []string {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(expo))
	if err != nil {
		t.Fatalf("parsing Python's exposition: %v", err)
	}
	var out []string
	line := func(name string, m *dto.Metric, extra string, v float64) {
		var parts []string
		for _, l := range m.GetLabel() {
			parts = append(parts, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
		}
		if extra != "" {
			parts = append(parts, extra)
		}
		sort.Strings(parts)
		out = append(out, name+"{"+strings.Join(parts, ",")+"} "+num(v))
	}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				line(name, m, "", m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				line(name, m, "", m.GetGauge().GetValue())
			case dto.MetricType_SUMMARY:
				line(name+"_count", m, "", float64(m.GetSummary().GetSampleCount()))
				line(name+"_sum", m, "", m.GetSummary().GetSampleSum())
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				for _, b := range h.GetBucket() {
					line(name+"_bucket", m, fmt.Sprintf("le=%q", goFloat(b.GetUpperBound())), float64(b.GetCumulativeCount()))
				}
				line(name+"_count", m, "", float64(h.GetSampleCount()))
				line(name+"_sum", m, "", h.GetSampleSum())
			default:
				line(name, m, "", m.GetUntyped().GetValue())
			}
		}
	}
	sort.Strings(out)
	return out
}
