package collector

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// clientGolangSelf gathers what the exporter served before SelfMetrics: client_golang's
// process, Go (default options) and version collectors.
func clientGolangSelf(t testing.TB) func() map[string]*dto.MetricFamily {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(), versioncollector.NewCollector("wsgi_exporter"))
	return func() map[string]*dto.MetricFamily {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		return byName(mfs)
	}
}

func byName(mfs []*dto.MetricFamily) map[string]*dto.MetricFamily {
	m := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		m[mf.GetName()] = mf
	}
	return m
}

// selfFamilies is one answer's families of an Exporter with SelfMetrics and no source, as
// client_model structs, and the answer's families themselves.
func selfFamilies(t testing.TB, e *Exporter) (map[string]*dto.MetricFamily, []answerFamily, func()) {
	fams, release, err := e.gather(context.Background(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var mfs []*dto.MetricFamily
	for _, f := range fams {
		mfs = append(mfs, f.dto())
	}
	return byName(mfs), fams, release
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	}
	return math.NaN()
}

func labelNames(m *dto.Metric) []string {
	var out []string
	for _, l := range m.Label {
		out = append(out, l.GetName()+"="+l.GetValue())
	}
	return out
}

// The process's own families written by SelfMetrics are client_golang's: the same names,
// types, help texts, units and labels, and the same values where they stand still (limits,
// start time, go_info, GOGC, GOMAXPROCS, build info), between two gatherings of
// client_golang's collectors for counters (t1 <= ours <= t2), and close to them for the
// gauges that move with every allocation. A family missing, renamed or added fails.
func TestSelfMetricsMatchClientGolang(t *testing.T) {
	theirs := clientGolangSelf(t)
	e, err := New(nil, Options{Self: NewSelfMetrics()})
	if err != nil {
		t.Fatal(err)
	}
	theirs() // both warmed up: first reads allocate their buffers
	_, _, rel := selfFamilies(t, e)
	rel()

	t1 := theirs()
	ours, _, release := selfFamilies(t, e)
	defer release()
	t2 := theirs()

	var names, want []string
	for n := range ours {
		names = append(names, n)
	}
	for n := range t1 {
		want = append(want, n)
	}
	slices.Sort(names)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("families differ:\nours:          %v\nclient_golang: %v", names, want)
	}
	if len(names) < 36 {
		t.Fatalf("only %d families: %v", len(names), names)
	}
	exact := map[string]bool{"process_max_fds": true, "process_virtual_memory_max_bytes": true,
		"process_start_time_seconds": true, "go_info": true, "go_gc_gogc_percent": true,
		"go_gc_gomemlimit_bytes": true, "go_sched_gomaxprocs_threads": true, "wsgi_exporter_build_info": true}
	for _, n := range names {
		o, a, b := ours[n], t1[n], t2[n]
		if o.GetType() != a.GetType() || o.GetHelp() != a.GetHelp() || o.GetUnit() != a.GetUnit() {
			t.Errorf("%s: ours %v %q unit %q, client_golang %v %q unit %q", n, o.GetType(), o.GetHelp(), o.GetUnit(), a.GetType(), a.GetHelp(), a.GetUnit())
			continue
		}
		if len(o.Metric) != 1 || len(a.Metric) != 1 || len(b.Metric) != 1 {
			t.Errorf("%s: %d series, client_golang %d", n, len(o.Metric), len(a.Metric))
			continue
		}
		om, am, bm := o.Metric[0], a.Metric[0], b.Metric[0]
		if got, want := labelNames(om), labelNames(am); !slices.Equal(got, want) {
			t.Errorf("%s: labels %v, client_golang %v", n, got, want)
		}
		if n == "go_gc_duration_seconds" {
			checkGCSummary(t, om.Summary, am.Summary, bm.Summary)
			continue
		}
		v, va, vb := value(om), value(am), value(bm)
		if n == "process_open_fds" {
			// client_golang counts the descriptors SelfMetrics keeps open, which it leaves out.
			// Another test's goroutine (a server still closing its connections) may open or
			// close one between the three readings: they are taken again, a few times, until
			// none did.
			kept := float64(e.opts.Self.proc.Kept())
			for try := 0; try < 20 && (v != va-kept || v != vb-kept); try++ {
				time.Sleep(10 * time.Millisecond)
				va = value(theirs()[n].Metric[0])
				o, _, rel := selfFamilies(t, e)
				v = value(o[n].Metric[0])
				rel()
				vb = value(theirs()[n].Metric[0])
			}
			if kept != 2 || v != va-kept || v != vb-kept {
				t.Errorf("process_open_fds = %v, client_golang %v then %v, %v kept", v, va, vb, kept)
			}
			continue
		}
		lo, hi := min(va, vb), max(va, vb)
		switch {
		case math.IsNaN(v):
			t.Errorf("%s: no value", n)
		case exact[n]:
			if v != va || v != vb {
				t.Errorf("%s = %v, client_golang %v then %v", n, v, va, vb)
			}
		case o.GetType() == dto.MetricType_COUNTER:
			if v < va || v > vb {
				t.Errorf("counter %s = %v, not between client_golang's %v and %v", n, v, va, vb)
			}
		default:
			if tol := gaugeTolerance(n, lo, hi); v < lo-tol || v > hi+tol {
				t.Errorf("gauge %s = %v, client_golang %v and %v (tolerance %v)", n, v, va, vb, tol)
			}
		}
	}
	// Relations the Go collector's values keep (from one reading, so exact).
	val := func(n string) float64 { return value(ours[n].Metric[0]) }
	if val("go_memstats_alloc_bytes") != val("go_memstats_heap_alloc_bytes") ||
		val("go_memstats_heap_sys_bytes") != val("go_memstats_heap_inuse_bytes")+val("go_memstats_heap_idle_bytes") ||
		val("go_memstats_heap_idle_bytes") < val("go_memstats_heap_released_bytes") ||
		val("go_memstats_mallocs_total") < val("go_memstats_frees_total") ||
		val("go_memstats_mspan_sys_bytes") < val("go_memstats_mspan_inuse_bytes") ||
		val("go_memstats_mcache_sys_bytes") < val("go_memstats_mcache_inuse_bytes") ||
		val("go_memstats_stack_sys_bytes") < val("go_memstats_stack_inuse_bytes") {
		t.Error("go_memstats_* do not keep MemStats' relations")
	}
	if got := val("go_sched_gomaxprocs_threads"); got != float64(runtime.GOMAXPROCS(0)) {
		t.Errorf("gomaxprocs %v, want %d", got, runtime.GOMAXPROCS(0))
	}
	if got := ours["go_info"].Metric[0].Label[0].GetValue(); got != runtime.Version() {
		t.Errorf("go_info version %q", got)
	}
}

// gaugeTolerance is how far a moving gauge may be from client_golang's two readings around
// ours: the Go heap and the process's memory move with the registry's own allocations.
func gaugeTolerance(name string, lo, hi float64) float64 {
	switch {
	case name == "go_goroutines", name == "go_threads":
		return 8 // the registry gathers in goroutines of its own
	case name == "go_memstats_last_gc_time_seconds":
		return 0 // moves only with a GC, which the two readings bracket
	case strings.HasPrefix(name, "process_"), strings.HasPrefix(name, "go_memstats_"):
		return max(hi*0.25, 1<<20)
	}
	return 0
}

// checkGCSummary compares go_gc_duration_seconds: the count between the two readings, and
// when no GC ran between them, everything exactly.
func checkGCSummary(t *testing.T, o, a, b *dto.Summary) {
	t.Helper()
	if o.GetSampleCount() < a.GetSampleCount() || o.GetSampleCount() > b.GetSampleCount() {
		t.Errorf("go_gc_duration_seconds count %d, client_golang %d then %d", o.GetSampleCount(), a.GetSampleCount(), b.GetSampleCount())
	}
	var got, want []string
	for _, q := range o.Quantile {
		got = append(got, fmt.Sprint(q.GetQuantile()))
	}
	for _, q := range a.Quantile {
		want = append(want, fmt.Sprint(q.GetQuantile()))
	}
	if !slices.Equal(got, want) {
		t.Errorf("go_gc_duration_seconds quantiles %v, client_golang %v", got, want)
	}
	if a.GetSampleCount() == b.GetSampleCount() {
		if o.GetSampleSum() != a.GetSampleSum() {
			t.Errorf("go_gc_duration_seconds sum %v, client_golang %v", o.GetSampleSum(), a.GetSampleSum())
		}
		for i, q := range o.Quantile {
			if q.GetValue() != a.Quantile[i].GetValue() {
				t.Errorf("go_gc_duration_seconds quantile %v = %v, client_golang %v", q.GetQuantile(), q.GetValue(), a.Quantile[i].GetValue())
			}
		}
	}
}

// After a few collections the summary's quantiles are not all 0: compared again, exactly.
func TestSelfMetricsGCSummaryAfterGC(t *testing.T) {
	for range 3 {
		runtime.GC()
	}
	TestSelfMetricsMatchClientGolang(t)
}

// The process's own families, written straight to text and OpenMetrics (a summary, units),
// are byte for byte what expfmt writes from their client_model structs.
func TestSelfMetricsExpositionMatchesExpfmt(t *testing.T) {
	runtime.GC()
	e, err := New(nil, Options{Self: NewSelfMetrics()})
	if err != nil {
		t.Fatal(err)
	}
	_, fams, release := selfFamilies(t, e)
	defer release()
	n := 0
	for _, f := range fams {
		if f.ours == nil {
			continue
		}
		for _, format := range []expfmt.Format{expfmt.NewFormat(expfmt.TypeTextPlain), expfmt.NewFormat(expfmt.TypeOpenMetrics)} {
			_, om := directFormat(format)
			got := f.ours.append(nil, om, func(b []byte) []byte { return b })
			var want bytes.Buffer
			if err := expfmt.NewEncoder(&want, format).Encode(f.dto()); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("%s in %s:\nours:\n%s\nexpfmt:\n%s", f.name(), format, got, want.Bytes())
			}
		}
		n++
	}
	if n < 36 {
		t.Fatalf("%d families", n)
	}
}
