package collector

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/wsgi-exporter/wsgi_exporter/uwsgi"
)

// FuzzUWSGIEmit decodes arbitrary stats documents, translates them and checks the families
// with client_golang's gathering: whatever uWSGI (or an impostor) sends, the exposition must
// stay valid — no panic, no duplicate series, no invalid label value, sorted as a registry
// would sort it.
func FuzzUWSGIEmit(f *testing.F) {
	files, err := filepath.Glob(filepath.Join(uwsgiFixtures, "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no fixtures: %v", err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, true)
	}
	f.Add([]byte(`{"workers":[{"id":2},{"id":0},{"id":2,"apps":[{"id":1},{"id":1}],"cores":[{"id":0},{"id":0}]}],"sockets":[{"name":"a"},{"name":"a"}],"caches":[{"name":"\xff"},{"name":"\xff"}],"metrics":{"a":{"type":0},"worker.1.x":{"type":1}}}`), true)
	f.Fuzz(func(t *testing.T, b []byte, cores bool) {
		st, err := uwsgi.Decode(b)
		if err != nil {
			return
		}
		src := &uwsgiSource{cfg: Config{Kind: "uwsgi", Address: "fuzz"}}
		w := testWriter(src)
		uwsgiTranslate(w, st, cores)
		checkFamilies(t, toDTO(assemble(nil, []*sourceOut{{src: src, w: w}})))
	})
}
