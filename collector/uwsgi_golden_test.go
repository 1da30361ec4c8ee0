package collector

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// uwsgiUpdating reports -update: regenerate fixtures/uwsgi/expected/*.prom (go test ./collector/
// -run TestUWSGIGolden -update). Another test file of the package may have defined -update.
var uwsgiUpdating = func() func() bool {
	if f := flag.Lookup("update"); f != nil {
		return func() bool { return f.Value.String() == "true" }
	}
	b := flag.Bool("update", false, "rewrite golden files")
	return func() bool { return *b }
}()

const uwsgiFixtures = "../fixtures/uwsgi"

// uwsgiExposition scrapes one uWSGI source through the shared machinery and returns its
// text exposition without the scrape duration (it varies) and without the error counters.
func uwsgiExposition(t testing.TB, addr string, opts UWSGIOptions) []byte {
	t.Helper()
	src, err := NewUWSGI(Config{Address: addr, Name: "fixture", Timeout: 5 * time.Second}, opts)
	if err != nil {
		t.Fatal(err)
	}
	exp, err := New([]Source{src}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fams, err := exp.Gatherer(context.Background(), 0).Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range fams {
		switch f.GetName() {
		case "wsgi_exporter_scrape_duration_seconds", "wsgi_exporter_scrape_errors_total", "wsgi_exporter_series_dropped_total":
			continue
		}
		if err := enc.Encode(f); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

func uwsgiFixtureAddr(t testing.TB, name string) string {
	abs, err := filepath.Abs(filepath.Join(uwsgiFixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	return "file://" + abs
}

// TestUWSGIGolden runs every captured stats document through the collector (cores on) and
// compares with the reviewed exposition.
func TestUWSGIGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(uwsgiFixtures, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			got := uwsgiExposition(t, uwsgiFixtureAddr(t, filepath.Base(f)), UWSGIOptions{CollectCores: true})
			golden := filepath.Join(uwsgiFixtures, "expected", name+".prom")
			if uwsgiUpdating() {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("exposition differs from %s (run with -update and review the diff):\n%s", golden, got)
			}
		})
	}
}

// parse turns an exposition back into families for value checks.
func uwsgiParse(t testing.TB, b []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	return fams
}
