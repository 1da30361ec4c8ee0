package collector

import (
	"path/filepath"
	"testing"
)

// The landing page's figures come from the series a scrape wrote: a captured uWSGI document
// with its 4 workers busy and 36 connections waiting, and a multiprocess directory of 2
// writers' files.
func TestSummaryOf(t *testing.T) {
	doc, err := filepath.Abs("../fixtures/uwsgi/tcp_4workers_cache_busy_slow.json")
	if err != nil {
		t.Fatal(err)
	}
	u, err := NewUWSGI(Config{Address: "file://" + doc}, UWSGIOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mp := newMP("../fixtures/multiproc/dirs/small_016", MultiprocOptions{})
	for _, c := range []struct {
		s    Source
		want []Fact
	}{
		{u, []Fact{{"workers busy", 4}, {"workers idle", 0}, {"listen queue", 36}}},
		{mp, []Fact{{"files", float64(countFiles(t, "../fixtures/multiproc/dirs/small_016"))}}},
	} {
		w := testWriter(c.s)
		if err := c.s.Scrape(t.Context(), w); err != nil {
			t.Fatal(err)
		}
		got := summaryOf(c.s.Kind().Name, w)
		if len(got) < len(c.want) {
			t.Fatalf("%s: %v, want %v first", c.s.Kind().Name, got, c.want)
		}
		for i := range c.want {
			if got[i] != c.want[i] {
				t.Errorf("%s: fact %d = %v, want %v", c.s.Kind().Name, i, got[i], c.want[i])
			}
		}
	}
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.db"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}
