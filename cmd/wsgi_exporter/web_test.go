package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/common/promslog"

	"github.com/wsgi-exporter/wsgi_exporter/collector"
)

// The landing page links to profiling only when --web.enable-pprof serves it, and every link
// it shows answers.
func TestLandingPageProfilingLinks(t *testing.T) {
	for _, pprof := range []bool{false, true} {
		exp, err := collector.New(nil, collector.Options{Logger: promslog.NewNopLogger()})
		if err != nil {
			t.Fatal(err)
		}
		mux, err := newMux(exp, "/metrics", pprof)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(mux)
		get := func(path string) (int, string) {
			resp, err := http.Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		code, page := get("/")
		if code != http.StatusOK {
			t.Fatalf("pprof=%v: landing page answered %d", pprof, code)
		}
		if got := strings.Contains(page, "/debug/pprof"); got != pprof {
			t.Errorf("pprof=%v: landing page links to /debug/pprof: %v", pprof, got)
		}
		wantPprof := http.StatusNotFound
		if pprof {
			wantPprof = http.StatusOK
		}
		if code, _ := get("/debug/pprof/"); code != wantPprof {
			t.Errorf("pprof=%v: /debug/pprof/ answered %d, want %d", pprof, code, wantPprof)
		}
		for _, path := range []string{"/metrics", "/-/healthy"} {
			if !strings.Contains(page, `href="`+path) {
				t.Errorf("landing page has no link to %s", path)
			}
			if code, _ := get(path); code != http.StatusOK {
				t.Errorf("%s answered %d", path, code)
			}
		}
		srv.Close()
	}
}
