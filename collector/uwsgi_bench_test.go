package collector

import (
	"encoding/json"
	"testing"

	"github.com/wsgi-exporter/wsgi_exporter/uwsgi"
)

// uwsgiBenchDoc is a stats document of n workers, each a copy of the fixture's first
// worker (2 threads, one busy with its request headers in cores[].vars).
func uwsgiBenchDoc(b *testing.B, n int) []byte {
	doc := uwsgiLoadFixture(b, "unix_4workers_2threads_metrics_busy_slow.json")
	w0 := doc["workers"].([]any)[0].(map[string]any)
	workers := make([]any, n)
	for i := range workers {
		w := make(map[string]any, len(w0))
		for k, v := range w0 {
			w[k] = v
		}
		w["id"], w["pid"] = i+1, 1000+i
		workers[i] = w
	}
	doc["workers"] = workers
	out, err := json.Marshal(doc)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// BenchmarkUWSGIScrape measures one scrape of a 64-worker instance without the network and
// without encoding: decode the document and build its families.
func BenchmarkUWSGIScrape(b *testing.B) {
	doc := uwsgiBenchDoc(b, 64)
	for _, cores := range []bool{false, true} {
		name := "64workers"
		if cores {
			name += "+cores"
		}
		b.Run(name, func(b *testing.B) {
			src := &uwsgiSource{cfg: Config{Kind: "uwsgi", Address: "bench"}}
			b.SetBytes(int64(len(doc)))
			b.ReportAllocs()
			for b.Loop() {
				st, err := uwsgi.Decode(doc)
				if err != nil {
					b.Fatal(err)
				}
				w := testWriter(src)
				uwsgiTranslate(w, st, cores)
				if fams := assemble(nil, []*sourceOut{{src: src, w: w}}); len(fams) == 0 {
					b.Fatal("no families")
				}
			}
		})
	}
}
