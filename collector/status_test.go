package collector

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// Status reports every source: not yet scraped, up with its series, down with the last
// error's reason and message, recovered with the old error kept, and a glob's targets under
// their own names until they vanish.
func TestStatus(t *testing.T) {
	failing := true
	bad := &fakeSource{cfg: Config{Address: "b", Timeout: time.Second}, fn: func(context.Context) error {
		if failing {
			return fetch.Errorf(fetch.ReasonConnect, "dial unix /run/b.sock: connection refused")
		}
		return nil
	}}
	g := &globSource{fakeSource: *fake("g/*", 0), expand: []Source{fake("g/1", 1)}}
	e := newExporter(t, fake("a", 1), bad, g)
	if st := e.Status(); len(st) != 3 || st[0].Source != "a" || st[0].Scraped || st[1].Source != "b" || st[2].Source != "g/*" {
		t.Fatalf("before any scrape: %+v", st)
	}
	before := time.Now()
	if _, err := e.Gatherer(context.Background(), 0).Gather(); err != nil {
		t.Fatal(err)
	}
	st := e.Status()
	if len(st) != 4 {
		t.Fatalf("%d statuses: %+v", len(st), st)
	}
	a, b, g1 := st[0], st[1], st[3] // "g/*" sorts before "g/1"
	if a.Kind != "fake" || a.Source != "a" || !a.Scraped || !a.Up || a.Series != 1 || a.LastScrape.Before(before) ||
		a.Duration <= 0 || !a.LastError.IsZero() || a.LastErrorReason != "" {
		t.Errorf("a: %+v", a)
	}
	if b.Source != "b" || !b.Scraped || b.Up || b.Series != 0 || b.LastErrorReason != fetch.ReasonConnect ||
		b.LastErrorMsg != "dial unix /run/b.sock: connection refused" || b.LastError != b.LastScrape {
		t.Errorf("b: %+v", b)
	}
	if g1.Source != "g/1" || !g1.Up || st[2].Source != "g/*" || st[2].Scraped {
		t.Errorf("glob: %+v %+v", g1, st[2])
	}
	failing = false
	g.expand = []Source{fake("g/2", 2)}
	if _, err := e.Gatherer(context.Background(), 0).Gather(); err != nil {
		t.Fatal(err)
	}
	st = e.Status()
	if len(st) != 4 || st[3].Source != "g/2" {
		t.Fatalf("after the glob changed: %+v", st)
	}
	if b := st[1]; !b.Up || b.LastErrorReason != fetch.ReasonConnect || !b.LastError.Before(b.LastScrape) {
		t.Errorf("recovered b: %+v", b)
	}
}

func TestTruncate(t *testing.T) {
	if got := truncate("héllo", 2); got != "h…" {
		t.Errorf("truncate on a rune: %q", got)
	}
	if got := truncate(strings.Repeat("x", 600), maxStatusMessage); len(got) != maxStatusMessage+len("…") {
		t.Errorf("%d bytes", len(got))
	}
	if got := truncate("short", 10); got != "short" {
		t.Errorf("%q", got)
	}
}
