package collector

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUWSGIGoldenMatchesJSON checks the reviewed expositions against the fixtures read as
// untyped JSON, independently of the typed model: every worker, app, core, socket and
// cache value, in base units.
func TestUWSGIGoldenMatchesJSON(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(uwsgiFixtures, "*.json"))
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			doc := uwsgiLoadFixture(t, filepath.Base(f))
			b, err := os.ReadFile(filepath.Join(uwsgiFixtures, "expected", name+".prom"))
			if err != nil {
				t.Fatal(err)
			}
			fams := uwsgiParse(t, b)
			num := func(m map[string]any, k string) float64 { v, _ := m[k].(float64); return v }
			check := func(metric string, labels map[string]string, want float64) {
				t.Helper()
				if got := uwsgiOne(t, fams, metric, labels); got != want {
					t.Errorf("%s%v = %v, JSON says %v", metric, labels, got, want)
				}
			}
			check("uwsgi_listen_queue_length", nil, num(doc, "listen_queue"))
			check("uwsgi_listen_queue_errors_total", nil, num(doc, "listen_queue_errors"))
			check("uwsgi_signal_queue_length", nil, num(doc, "signal_queue"))
			workers := doc["workers"].([]any)
			check("uwsgi_workers", nil, float64(len(workers)))
			for i, wv := range workers {
				w := wv.(map[string]any)
				id := fmt.Sprint(num(w, "id"))
				if id == "0" {
					id = fmt.Sprint(i + 1) // cheap worker: its slot
				}
				l := map[string]string{"worker_id": id}
				check("uwsgi_worker_requests_total", l, num(w, "requests"))
				check("uwsgi_worker_exceptions_total", l, num(w, "exceptions"))
				check("uwsgi_worker_respawn_count_total", l, num(w, "respawn_count"))
				check("uwsgi_worker_transmitted_bytes_total", l, num(w, "tx"))
				check("uwsgi_worker_harakiri_count_total", l, num(w, "harakiri_count"))
				check("uwsgi_worker_running_time_seconds_total", l, num(w, "running_time")/1e6)
				check("uwsgi_worker_average_response_time_seconds", l, num(w, "avg_rt")/1e6)
				check("uwsgi_worker_accepting", l, num(w, "accepting"))
				check("uwsgi_worker_delta_requests", l, num(w, "delta_requests"))
				if rss := num(w, "rss"); rss > 0 {
					check("uwsgi_worker_rss_bytes", l, rss)
				}
				for _, st := range []string{"busy", "idle", "cheap"} {
					want := 0.0
					if w["status"] == st {
						want = 1
					}
					check("uwsgi_worker_"+st, l, want)
				}
				for _, av := range w["apps"].([]any) {
					a := av.(map[string]any)
					al := map[string]string{"worker_id": id, "app_id": fmt.Sprint(num(a, "id"))}
					check("uwsgi_worker_app_requests_total", al, num(a, "requests"))
					check("uwsgi_worker_app_exceptions_total", al, num(a, "exceptions"))
				}
				cores, _ := w["cores"].([]any)
				for _, cv := range cores {
					c := cv.(map[string]any)
					cl := map[string]string{"worker_id": id, "core_id": fmt.Sprint(num(c, "id"))}
					check("uwsgi_worker_core_requests_total", cl, num(c, "requests"))
					check("uwsgi_worker_core_busy", cl, num(c, "in_request"))
				}
			}
			for _, sv := range doc["sockets"].([]any) {
				s := sv.(map[string]any)
				sl := map[string]string{"name": s["name"].(string), "proto": s["proto"].(string)}
				check("uwsgi_socket_queue_length", sl, num(s, "queue"))
				check("uwsgi_socket_max_queue_length", sl, num(s, "max_queue"))
			}
			caches, _ := doc["caches"].([]any)
			for _, cv := range caches {
				c := cv.(map[string]any)
				cl := map[string]string{"name": c["name"].(string)}
				check("uwsgi_cache_hits_total", cl, num(c, "hits"))
				check("uwsgi_cache_misses_total", cl, num(c, "miss"))
				check("uwsgi_cache_full_total", cl, num(c, "full"))
				check("uwsgi_cache_items", cl, num(c, "items"))
				check("uwsgi_cache_max_items", cl, num(c, "max_items"))
			}
		})
	}
}
