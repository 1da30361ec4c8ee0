package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wsgi-exporter/wsgi_exporter/collector"
)

type fixedStatus []collector.SourceStatus

func (f fixedStatus) Status() []collector.SourceStatus { return f }

func TestLandingPageShowsLiveState(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	status := fixedStatus{
		{Kind: "gunicorn", Source: "/run/a.pid", Scraped: true, Up: true, LastScrape: now.Add(-3 * time.Second), Duration: 1500 * time.Microsecond,
			Summary: []collector.Fact{{Name: "workers", Value: 4}, {Name: "oldest heartbeat (s)", Value: 2.5}}},
		{Kind: "gunicorn", Source: "/run/b.pid", Scraped: true, Up: true, LastScrape: now.Add(-3 * time.Second),
			Summary: []collector.Fact{{Name: "workers", Value: 2}, {Name: "oldest heartbeat (s)", Value: 7}}},
		{Kind: "uwsgi", Source: "unix:///run/a.sock", Scraped: true, Up: true, LastScrape: now.Add(-90 * time.Second), Duration: 12 * time.Millisecond,
			LastError: now.Add(-10 * time.Minute), LastErrorReason: "timeout", LastErrorMsg: "old failure",
			Summary: []collector.Fact{{Name: "workers busy", Value: 3}, {Name: "workers idle", Value: 1}}},
		{Kind: "uwsgi", Source: "unix:///run/b.sock", Scraped: true, Up: false, LastScrape: now.Add(-2 * time.Second), Duration: time.Millisecond,
			LastError: now.Add(-2 * time.Second), LastErrorReason: "connect", LastErrorMsg: `dial unix /run/b.sock: <script>alert("x")</script>`},
		{Kind: "nginx", Source: "http://127.0.0.1:8080/stub_status"},
	}
	p := newLandingPage(status, "/metrics", false)
	p.now = func() time.Time { return now }
	srv := httptest.NewServer(p)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(b)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("status %d, headers %v", resp.StatusCode, resp.Header)
	}
	for _, want := range []string{
		// rows, kinds in the page's order (uWSGI, nginx, ..., gunicorn), state and ages
		`data-kind="uwsgi" data-source="unix:///run/a.sock" data-state="up">`,
		`<td class="age">1m30s ago</td>`,
		`<td class="took">12.0 ms</td>`,
		`<td class="figures">workers busy 3, workers idle 1</td>`,
		`<span class="error" data-reason="timeout">timeout: old failure</span> <span class="muted">(10m00s ago)</span>`,
		`data-kind="uwsgi" data-source="unix:///run/b.sock" data-state="down">`,
		`<td class="age">2.0s ago</td>`,
		`connect: dial unix /run/b.sock: &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;`,
		`data-kind="nginx" data-source="http://127.0.0.1:8080/stub_status" data-state="pending">`,
		`<td class="age">not yet scraped</td>`,
		`<td class="took">1.5 ms</td>`,
		// summaries: per kind, sums except the oldest heartbeat (the largest)
		`<p class="count">1 of 2 up, <span class="error">1 down</span></p>`,
		`<p class="count">0 of 1 up, 1 not yet scraped</p>`,
		`<p class="count">2 of 2 up</p>`,
		`<p class="fact" data-fact="workers">workers: <b>6</b></p>`,
		`<p class="fact" data-fact="oldest heartbeat (s)">oldest heartbeat (s): <b>7</b></p>`,
		`<p class="fact" data-fact="workers busy">workers busy: <b>3</b></p>`,
		`<a href="/metrics">Metrics</a>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(page, "<script") {
		t.Error("an error message reached the page unescaped")
	}
	order := regexp.MustCompile(`data-kind="(\w+)" data-source`).FindAllStringSubmatch(page, -1)
	var kinds []string
	for _, m := range order {
		kinds = append(kinds, m[1])
	}
	if got := strings.Join(kinds, " "); got != "uwsgi uwsgi nginx gunicorn gunicorn" {
		t.Errorf("rows in order %s", got)
	}
	// No external asset: no script, no stylesheet or image link, no absolute URL but the
	// sources' own addresses.
	for _, bad := range []string{"<script", "<link", "<img", "src=", "@import", "url("} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	for _, m := range regexp.MustCompile(`href="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		if !strings.HasPrefix(m[1], "/") {
			t.Errorf("link %q is not local", m[1])
		}
	}

	resp, err = http.Get(srv.URL + "/other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("/other answered %d, want 404", resp.StatusCode)
	}
}

func TestLandingPageWithoutSources(t *testing.T) {
	p := newLandingPage(fixedStatus(nil), "/metrics", false)
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if !strings.Contains(rec.Body.String(), `<p id="no-sources">No source is configured`) {
		t.Fatalf("page:\n%s", rec.Body.String())
	}
}

func TestAge(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second:                  "just now",
		400 * time.Millisecond:        "0.4s ago",
		42 * time.Second:              "42s ago",
		3*time.Minute + 4*time.Second: "3m04s ago",
		5*time.Hour + 7*time.Minute:   "5h07m ago",
		80 * time.Hour:                "3d ago",
	} {
		if got := age(d); got != want {
			t.Errorf("age(%v) = %q, want %q", d, got, want)
		}
	}
}
