package uwsgi

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// FuzzDecode feeds arbitrary documents to Decode, seeded with every captured fixture: it
// must never panic, and a failure is always a decode error.
func FuzzDecode(f *testing.F) {
	files, err := filepath.Glob(filepath.Join(fixtures, "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no fixtures: %v", err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"workers":[{"id":0,"status":"sig"},{"id":0,"status":"cheap"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := Decode(b)
		if err != nil {
			if r := fetch.ReasonOf(err); r != fetch.ReasonDecode {
				t.Fatalf("reason %q for %v", r, err)
			}
			return
		}
		for _, w := range st.Workers {
			_ = StatusKind(w.Status)
		}
		_ = st.String()
	})
}
