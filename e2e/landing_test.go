package e2e

import (
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// chromiumDOM loads url in Debian's headless Chromium and returns the DOM it built.
func chromiumDOM(t *testing.T, url string) string {
	t.Helper()
	RequireCommand(t, "chromium")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "chromium", "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--no-first-run", "--user-data-dir="+t.TempDir(), "--dump-dom", url)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || len(out) == 0 {
		t.Fatalf("chromium --dump-dom %s: %v\n%s", url, err, tail(stderr.String(), 3000))
	}
	return string(out)
}

// landingRow finds a source's row in the landing page's DOM: its state and the rest of the row.
func landingRow(t *testing.T, dom, kind, source string) (state, row string) {
	t.Helper()
	re := regexp.MustCompile(`(?s)<tr class="source" data-kind="` + regexp.QuoteMeta(kind) + `" data-source="` +
		regexp.QuoteMeta(source) + `" data-state="(\w+)">(.*?)</tr>`)
	m := re.FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("no row for %s %s in the page:\n%s", kind, source, dom)
	}
	return m[1], m[2]
}

// TestLandingPageInChromium loads the landing page in headless Chromium while a real nginx
// is up, after it stops, and after it starts again: the source's row turns down with the
// reason and message of the failure, then up again (the last error kept, as history), and the
// nginx summary shows the active connections while it is up.
func TestLandingPageInChromium(t *testing.T) {
	RequireCommand(t, "chromium")
	n := nginxStart(t, nil)
	uri := n.stubURI()
	x := StartExporter(t, "--nginx.scrape-uri="+uri)

	dom := chromiumDOM(t, x.URL+"/")
	if state, _ := landingRow(t, dom, "nginx", uri); state != "pending" {
		t.Fatalf("before any scrape: state %s, want pending", state)
	}

	x.Scrape(t) // as Prometheus would
	dom = chromiumDOM(t, x.URL+"/")
	state, row := landingRow(t, dom, "nginx", uri)
	if state != "up" || !strings.Contains(row, "active connections 1") || !regexp.MustCompile(`<td class="age">\d+\.\ds ago</td>`).MatchString(row) {
		t.Fatalf("nginx up: state %s, row %s", state, row)
	}
	if !strings.Contains(dom, `<p class="count">1 of 1 up</p>`) {
		t.Errorf("no nginx summary 1 of 1 up:\n%s", dom)
	}

	n.Proc.Stop()
	x.Scrape(t)
	dom = chromiumDOM(t, x.URL+"/")
	state, row = landingRow(t, dom, "nginx", uri)
	if state != "down" || !strings.Contains(row, `data-reason="connect"`) || !strings.Contains(row, "connection refused") {
		t.Fatalf("nginx stopped: state %s, row %s", state, row)
	}
	if !strings.Contains(dom, `0 of 1 up, <span class="error">1 down</span>`) {
		t.Errorf("no nginx summary with 1 down:\n%s", dom)
	}

	n.start(t)
	x.Scrape(t)
	dom = chromiumDOM(t, x.URL+"/")
	state, row = landingRow(t, dom, "nginx", uri)
	if state != "up" || !strings.Contains(row, `data-reason="connect"`) {
		t.Fatalf("nginx restarted: state %s, row %s (want up, the last error kept)", state, row)
	}
	for _, bad := range []string{"<script", "<link", "<img"} {
		if strings.Contains(dom, bad) {
			t.Errorf("the page holds %s", bad)
		}
	}
}
