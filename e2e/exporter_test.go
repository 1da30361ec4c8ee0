package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// TestExporterWithoutSources checks the binary's own surface: health, landing page,
// exposition formats and a clean promtool report.
func TestExporterWithoutSources(t *testing.T) {
	x := StartExporter(t)
	code, body := x.Get(t, "/-/healthy", nil)
	if code != 200 || string(body) != "Healthy\n" {
		t.Fatalf("/-/healthy: %d %q", code, body)
	}
	code, body = x.Get(t, "/", nil)
	if code != 200 || !strings.Contains(string(body), "No source is configured") || !strings.Contains(string(body), `href="/metrics"`) {
		t.Fatalf("landing page: %d\n%s", code, body)
	}
	m := x.Scrape(t)
	if got := m.Get(t, "wsgi_exporter_build_info", nil); got != 1 {
		t.Fatalf("wsgi_exporter_build_info = %v", got)
	}
	PromtoolCheck(t, m.Raw)
	code, body = x.Get(t, "/metrics", http.Header{"Accept": {"application/openmetrics-text; version=1.0.0"}})
	if code != 200 || !strings.HasSuffix(string(body), "# EOF\n") {
		t.Fatalf("OpenMetrics: %d\n%s", code, body)
	}
	code, _ = x.Get(t, "/debug/pprof/", nil)
	if code == 200 {
		t.Fatalf("pprof is served without --web.enable-pprof")
	}
}
