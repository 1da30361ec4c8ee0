package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/common/promslog"
)

// testFleet builds the fleet of a command line, as run does.
func testFleet(t *testing.T, args ...string) *fleet {
	t.Helper()
	app, s := newApp()
	if _, err := app.Parse(args); err != nil {
		t.Fatal(err)
	}
	fl, err := s.newFleet(nil, promslog.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	return fl
}

// The landing page links to profiling only when --web.enable-pprof serves it, and every link
// it shows answers.
func TestLandingPageProfilingLinks(t *testing.T) {
	for _, pprof := range []bool{false, true} {
		arg := "--no-web.enable-pprof"
		if pprof {
			arg = "--web.enable-pprof"
		}
		fl := testFleet(t, arg)
		mux, err := newMux(fl, "/metrics", pprof, false)
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
