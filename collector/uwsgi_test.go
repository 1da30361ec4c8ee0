package collector

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/wsgi-exporter/wsgi_exporter/uwsgi"
)

func uwsgiOne(t testing.TB, fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	var found []*dto.Metric
	for _, m := range fams[name].GetMetric() {
		ok := true
		for k, v := range labels {
			match := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					match = true
				}
			}
			ok = ok && match
		}
		if ok {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s%v: %d series", name, labels, len(found))
	}
	m := found[0]
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	}
	t.Fatalf("%s: neither counter nor gauge", name)
	return 0
}

func uwsgiWriteJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "stats.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return "file://" + p
}

func uwsgiLoadFixture(t testing.TB, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(uwsgiFixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestUWSGIRequestHeadersNeverExported plants a secret header in a busy core's vars and
// req_info and checks that it never reaches the exposition, with and without cores.
func TestUWSGIRequestHeadersNeverExported(t *testing.T) {
	const secret = "Bearer s3cr3t-t0ken-42"
	doc := uwsgiLoadFixture(t, "unix_4workers_2threads_metrics_busy_slow.json")
	w0 := doc["workers"].([]any)[0].(map[string]any)
	core := w0["cores"].([]any)[0].(map[string]any)
	core["vars"] = append(core["vars"].([]any), "HTTP_AUTHORIZATION="+secret)
	core["req_info"].(map[string]any)["secret"] = secret
	addr := uwsgiWriteJSON(t, doc)
	for _, cores := range []bool{false, true} {
		out := uwsgiExposition(t, addr, UWSGIOptions{CollectCores: cores})
		for _, needle := range []string{secret, "s3cr3t", "HTTP_AUTHORIZATION", "REQUEST_URI", "/slow", "HTTP_HOST", "request_start"} {
			if bytes.Contains(out, []byte(needle)) {
				t.Fatalf("cores=%v: %q is in the exposition:\n%s", cores, needle, out)
			}
		}
		fams := uwsgiParse(t, out)
		if got := uwsgiOne(t, fams, "uwsgi_worker_busy", map[string]string{"worker_id": "1"}); got != 1 {
			t.Fatalf("worker 1 busy = %v", got)
		}
	}
}

func TestUWSGICoresBehindFlag(t *testing.T) {
	addr := uwsgiFixtureAddr(t, "unix_4workers_2threads_metrics_busy_slow.json")
	off := uwsgiParse(t, uwsgiExposition(t, addr, UWSGIOptions{}))
	for name := range off {
		if strings.HasPrefix(name, "uwsgi_worker_core_") {
			t.Fatalf("%s exported without --uwsgi.collect-cores", name)
		}
	}
	if got := uwsgiOne(t, off, "uwsgi_worker_cores", map[string]string{"worker_id": "3"}); got != 2 {
		t.Fatalf("uwsgi_worker_cores = %v, want 2", got)
	}
	on := uwsgiParse(t, uwsgiExposition(t, addr, UWSGIOptions{CollectCores: true}))
	// Worker 1, core 0 of the fixture: 13820 requests, in a request.
	if got := uwsgiOne(t, on, "uwsgi_worker_core_requests_total", map[string]string{"worker_id": "1", "core_id": "0"}); got != 13820 {
		t.Fatalf("core requests = %v", got)
	}
	if got := uwsgiOne(t, on, "uwsgi_worker_core_busy", map[string]string{"worker_id": "1", "core_id": "1"}); got != 1 {
		t.Fatalf("core busy = %v", got)
	}
	if n := len(on["uwsgi_worker_core_requests_total"].GetMetric()); n != 8 {
		t.Fatalf("%d core series, want 8 (4 workers x 2 threads)", n)
	}
}

// TestUWSGIWorkerStatuses covers every status uWSGI writes and the cheap workers that all
// report id 0.
func TestUWSGIWorkerStatuses(t *testing.T) {
	statuses := []string{"idle", "busy", "cheap", "pause", "sig1", "sig", "cheap", "weird"}
	wantKind := []string{"idle", "busy", "cheap", "pause", "sig", "sig", "cheap", "unknown"}
	var workers []map[string]any
	for i, s := range statuses {
		id := i + 1
		if s == "cheap" {
			id = 0
		}
		workers = append(workers, map[string]any{"id": id, "pid": 100 + id, "status": s, "requests": i * 10})
	}
	fams := uwsgiParse(t, uwsgiExposition(t, uwsgiWriteJSON(t, map[string]any{"version": "2.0.21", "workers": workers}), UWSGIOptions{}))
	if got := uwsgiOne(t, fams, "uwsgi_workers", nil); got != float64(len(statuses)) {
		t.Fatalf("uwsgi_workers = %v, want %d", got, len(statuses))
	}
	for i, k := range wantKind {
		id := []string{"1", "2", "3", "4", "5", "6", "7", "8"}[i]
		for _, st := range uwsgiStatuses {
			want := 0.0
			if st == k {
				want = 1
			}
			if got := uwsgiOne(t, fams, "uwsgi_worker_status", map[string]string{"worker_id": id, "status": st}); got != want {
				t.Errorf("worker %s (%s) status %s = %v, want %v", id, statuses[i], st, got, want)
			}
		}
		if got := uwsgiOne(t, fams, "uwsgi_worker_requests_total", map[string]string{"worker_id": id}); got != float64(i*10) {
			t.Errorf("worker %s requests = %v", id, got)
		}
	}
	if got := len(fams["uwsgi_worker_cheap"].GetMetric()); got != len(statuses) {
		t.Fatalf("%d uwsgi_worker_cheap series", got)
	}
	// No memory report: rss and vsz are unknown, not 0.
	if _, ok := fams["uwsgi_worker_rss_bytes"]; ok {
		t.Fatal("uwsgi_worker_rss_bytes exported though uWSGI reported 0 (no --memory-report)")
	}
}

func TestUWSGIWorkerIDsUnique(t *testing.T) {
	for _, tc := range []struct {
		ids  []uint64
		want []string
	}{
		{[]uint64{1, 0, 0, 0}, []string{"1", "2", "3", "4"}},
		{[]uint64{0, 0, 1}, []string{"slot1", "2", "1"}},
		{[]uint64{2, 2}, []string{"2", "slot2"}},
		{[]uint64{7, 7, 0}, []string{"7", "2", "3"}},
	} {
		ws := make([]uwsgi.Worker, len(tc.ids))
		for i, id := range tc.ids {
			ws[i].ID = id
		}
		got := uwsgiWorkerIDs(ws)
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("ids %v: got %v, want %v", tc.ids, got, tc.want)
		}
	}
}

func TestUWSGIMetricsSubsystem(t *testing.T) {
	fams := uwsgiParse(t, uwsgiExposition(t, uwsgiFixtureAddr(t, "unix_4workers_2threads_metrics_after_load.json"), UWSGIOptions{}))
	if got := uwsgiOne(t, fams, "uwsgi_metric_total", map[string]string{"name": "app_hits"}); got != 30 {
		t.Fatalf("app_hits = %v, want 30", got)
	}
	if got := uwsgiOne(t, fams, "uwsgi_metric_total", map[string]string{"name": "core.overloaded"}); got != 5 {
		t.Fatalf("core.overloaded = %v, want 5", got)
	}
	if got := uwsgiOne(t, fams, "uwsgi_metric_value", map[string]string{"name": "core.idle_workers"}); got != 4 {
		t.Fatalf("core.idle_workers = %v, want 4", got)
	}
	for _, m := range append(fams["uwsgi_metric_total"].GetMetric(), fams["uwsgi_metric_value"].GetMetric()...) {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == "name" && (strings.HasPrefix(lp.GetValue(), "worker.") || lp.GetValue() == "rss_size") {
				t.Fatalf("built-in per-worker metric or alias exported: %s", lp.GetValue())
			}
		}
	}
}

// TestUWSGIGlobExpands serves two fake stats sockets in a directory next to a non-socket
// file and checks each becomes a source named by its own URI.
func TestUWSGIGlobExpands(t *testing.T) {
	dir := t.TempDir()
	doc, err := os.ReadFile(filepath.Join(uwsgiFixtures, "tcp_4workers_cache_idle.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a.sock", "b.sock"} {
		l, err := net.Listen("unix", filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				_, _ = c.Write(doc)
				c.Close()
			}
		}()
	}
	if err := os.WriteFile(filepath.Join(dir, "c.sock.pid"), []byte("1"), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := NewUWSGI(Config{Address: "unix://" + dir + "/*.sock*", Timeout: 5 * time.Second}, UWSGIOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := src.(Expander); !ok {
		t.Fatal("a glob address is not an Expander")
	}
	exp, err := New([]Source{src}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fams, err := exp.Gatherer(context.Background(), 0).Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		byName[f.GetName()] = f
	}
	for _, n := range []string{"a.sock", "b.sock"} {
		uri := "unix://" + filepath.Join(dir, n)
		if got := uwsgiOne(t, byName, "uwsgi_up", map[string]string{"stats_uri": uri}); got != 1 {
			t.Fatalf("%s up = %v", uri, got)
		}
		if got := uwsgiOne(t, byName, "uwsgi_workers", map[string]string{"stats_uri": uri}); got != 4 {
			t.Fatalf("%s workers = %v", uri, got)
		}
	}
	if n := len(byName["uwsgi_up"].GetMetric()); n != 2 {
		t.Fatalf("%d up series, want 2 (the pid file is not a socket)", n)
	}
	// Nothing matching: the glob itself is down with reason not_found.
	empty, err := NewUWSGI(Config{Address: "unix://" + t.TempDir() + "/*.sock", Timeout: time.Second}, UWSGIOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srcs, err := empty.(Expander).Expand(context.Background())
	if err != nil || len(srcs) != 0 {
		t.Fatalf("empty glob: %v %v", srcs, err)
	}
}

func TestUWSGIBadAddresses(t *testing.T) {
	for _, a := range []string{"", "localhost", "ftp://x:1", "unix://relative.sock", "unix:///run/[", "http://", "file://rel"} {
		if _, err := NewUWSGI(Config{Address: a}, UWSGIOptions{}); err == nil {
			t.Errorf("%q accepted", a)
		}
	}
}
