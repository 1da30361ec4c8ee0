package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// grafanaDashboard is the part of a dashboard JSON the test reads.
type grafanaDashboard struct {
	UID        string `json:"uid"`
	Templating struct {
		List []struct {
			Name  string
			Type  string
			Query any
		}
	}
	Panels []struct {
		Type    string
		Title   string
		Targets []struct {
			Expr         string
			LegendFormat string
			RefID        string `json:"refId"`
		}
	}
}

func loadDashboards(t *testing.T) []grafanaDashboard {
	t.Helper()
	files, err := filepath.Glob("../dashboards/*.json")
	if err != nil || len(files) != 6 {
		t.Fatalf("dashboards: %v, %v (want 6)", files, err)
	}
	var out []grafanaDashboard
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d grafanaDashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, d)
	}
	return out
}

// dashboardRateWindow stands for $__rate_interval: 20 scrapes at the test's 1 s interval.
const dashboardRateWindow = 20 * time.Second

// substitute replaces the dashboard variables as Grafana would with "All" selected (our
// variables are regex matched) and $__rate_interval by dashboardRateWindow.
func substitute(expr string) string {
	return strings.NewReplacer(
		"$__rate_interval", fmt.Sprintf("%ds", int(dashboardRateWindow.Seconds())),
		"$job", "wsgi", "$instance", ".+", "$source", ".+", "$statsd", ".+",
	).Replace(expr)
}

// answer is one request of the test's traffic: when its answer arrived, its path and code.
type answer struct {
	at   time.Time
	path string
	code int
}

// paceTraffic sends GET base+paths[k % len(paths)] as request k, at start + k/perSecond,
// until ctx ends, counts the answers' status codes by path and records each answer.
func paceTraffic(ctx context.Context, base string, perSecond float64, paths []string, codes map[string]map[int]int, answers *[]answer, mu *sync.Mutex) {
	c := &http.Client{Timeout: 10 * time.Second}
	start := time.Now()
	for k := 0; ; k++ {
		at := start.Add(time.Duration(float64(k) / perSecond * float64(time.Second)))
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(at)):
		}
		path := paths[k%len(paths)]
		code := 0
		if resp, err := c.Get(base + path); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			code = resp.StatusCode
		}
		mu.Lock()
		if codes[path] == nil {
			codes[path] = map[int]int{}
		}
		codes[path][code]++
		*answers = append(*answers, answer{time.Now(), path, code})
		mu.Unlock()
	}
}

// TestDashboardsOnRealStack runs the demo's stack (nginx, uWSGI, gunicorn, the exporter and a
// Prometheus scraping it every second), sends 10 requests a second to uWSGI through nginx and
// 10 to gunicorn for 30 s (per 10: 7 to /, 1 to an unknown path, 1 to /error, 1 to /raise),
// then evaluates every query of every panel and every variable of the dashboards: each
// returns data, and the request-rate panels show the rates of the answers received in the
// window (on a loaded machine the sender falls behind its pace and catches up later).
func TestDashboardsOnRealStack(t *testing.T) {
	dashboards := loadDashboards(t)
	d := newDemoStack(t, "DEMO_TRAFFIC_RATE=0")
	d.start(t)
	d.waitAllSourcesUp(t)

	paths := []string{"/", "/", "/nope", "/", "/", "/error", "/", "/", "/raise", "/"}
	const perSecond = 10.0
	ctx, cancel := context.WithTimeout(context.Background(), 32*time.Second)
	defer cancel()
	var mu sync.Mutex
	codes := map[string]map[string]map[int]int{"uwsgi": {}, "gunicorn": {}}
	answers := map[string]*[]answer{"uwsgi": {}, "gunicorn": {}}
	var wg sync.WaitGroup
	for target, base := range map[string]string{"uwsgi": d.Nginx, "gunicorn": d.Gunicorn} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			paceTraffic(ctx, base, perSecond, paths, codes[target], answers[target], &mu)
		}()
	}
	start := time.Now()
	time.Sleep(25 * time.Second)
	at := time.Now().Add(-2 * time.Second) // every sample of the window is stored by now
	if at.Sub(start) < dashboardRateWindow+2*time.Second {
		t.Fatalf("evaluation time %v after the traffic started, inside the first window", at.Sub(start))
	}

	for _, dash := range dashboards {
		for _, p := range dash.Panels {
			for _, q := range p.Targets {
				expr := substitute(q.Expr)
				v, err := promVector(d.Prometheus, expr, at)
				if err != nil {
					t.Errorf("%s / %s / %s: %v", dash.UID, p.Title, q.RefID, err)
					continue
				}
				if len(v) == 0 {
					t.Errorf("%s / %s / %s returns no data: %s", dash.UID, p.Title, q.RefID, expr)
				}
			}
		}
		for _, v := range dash.Templating.List {
			if v.Type != "query" {
				continue
			}
			query := substitute(v.Query.(map[string]any)["query"].(string))
			values := labelValues(t, d.Prometheus, query, at)
			if len(values) == 0 {
				t.Errorf("%s: variable %s (%s) has no value", dash.UID, v.Name, query)
			}
		}
	}

	// The request-rate panels against the traffic sent. nginx also counts the exporter's read
	// of stub_status at each of Prometheus' scrapes: about 1 a second, fewer when the machine
	// is loaded, so the scrapes are counted in the window from what Prometheus stored.
	sv, err := promVector(d.Prometheus, fmt.Sprintf(`count_over_time(scrape_duration_seconds{job="wsgi"}[%ds])`, int(dashboardRateWindow.Seconds())), at)
	if err != nil || len(sv) != 1 {
		t.Fatalf("counting the scrapes: %v %v", sv, err)
	}
	scrapeRate := sv[0].Value / dashboardRateWindow.Seconds()
	// sent is the rate of the answers of target that arrived in the window and satisfy keep:
	// the ground truth, whatever pace a loaded machine let the sender keep.
	sent := func(target string, keep func(answer) bool) float64 {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, a := range *answers[target] {
			if a.at.After(at.Add(-dashboardRateWindow)) && !a.at.After(at) && keep(a) {
				n++
			}
		}
		return float64(n) / dashboardRateWindow.Seconds()
	}
	all := func(answer) bool { return true }
	code := func(c int) func(answer) bool { return func(a answer) bool { return a.code == c } }
	raised := func(a answer) bool { return a.path == "/raise" }
	fivexx := func(a answer) bool { return a.code >= 500 }
	uwsgiRate, gunicornRate := sent("uwsgi", all), sent("gunicorn", all)
	type want struct {
		uid, title, legend string // legend: the rendered legend of the series, "" for any
		value              float64
	}
	wants := []want{
		{"wsgi-uwsgi", "Requests per second", "", uwsgiRate},
		{"wsgi-uwsgi", "Exceptions per second", "", sent("uwsgi", raised)},
		{"wsgi-nginx", "Requests per second", "", uwsgiRate + scrapeRate},
		{"wsgi-gunicorn", "Requests per second", "", gunicornRate},
		{"wsgi-gunicorn", "Responses by status code", "200", sent("gunicorn", code(200))},
		{"wsgi-gunicorn", "Responses by status code", "404", sent("gunicorn", code(404))},
		{"wsgi-gunicorn", "Responses by status code", "500", sent("gunicorn", code(500))},
		{"wsgi-gunicorn", "5xx ratio", "", sent("gunicorn", fivexx) / gunicornRate},
		{"wsgi-overview", "Requests per second by layer", "nginx", uwsgiRate + scrapeRate},
		{"wsgi-overview", "Requests per second by layer", "uWSGI", uwsgiRate},
		{"wsgi-overview", "Requests per second by layer", "gunicorn", gunicornRate},
		{"wsgi-overview", "Errors per second", "uWSGI exceptions", sent("uwsgi", raised)},
		{"wsgi-overview", "Errors per second", "gunicorn 5xx", sent("gunicorn", fivexx)},
	}
	checked := 0
	for _, w := range wants {
		for _, dash := range dashboards {
			for _, p := range dash.Panels {
				if dash.UID != w.uid || p.Title != w.title {
					continue
				}
				for _, q := range p.Targets {
					v, err := promVector(d.Prometheus, substitute(q.Expr), at)
					if err != nil {
						t.Fatal(err)
					}
					for _, s := range v {
						legend := renderLegend(q.LegendFormat, s.Metric)
						if w.legend != "" && legend != w.legend {
							continue
						}
						checked++
						t.Logf("%s / %s / %q = %.3f (sent %.3f)", w.uid, w.title, legend, s.Value, w.value)
						// The window's edges: a server counts a request a moment before its
						// answer arrives, and Prometheus' samples are a second apart, so a
						// request may cross an edge. 5%, or 1.5 requests in the window for
						// the slow series (5% for the share of 5xx).
						slack := 0.05 * w.value
						if w.title != "5xx ratio" {
							slack = math.Max(slack, 1.5/dashboardRateWindow.Seconds())
						}
						if math.Abs(s.Value-w.value) > slack {
							t.Errorf("%s / %s / %q = %.3f, want %.3f ±%.3f (traffic sent)", w.uid, w.title, legend, s.Value, w.value, slack)
						}
					}
				}
			}
		}
	}
	if checked != len(wants) {
		t.Errorf("checked %d request-rate series, want %d: a panel or legend was renamed", checked, len(wants))
	}

	cancel()
	wg.Wait()
	// The traffic got the answers the rates assume.
	for target, raise := range map[string]int{"uwsgi": 502, "gunicorn": 500} {
		for path, code := range map[string]int{"/": 200, "/nope": 404, "/error": 500, "/raise": raise} {
			if got := codes[target][path]; len(got) != 1 || got[code] == 0 {
				t.Errorf("%s %s: answers %v, want only %d", target, path, got, code)
			}
		}
	}
}

var legendVar = regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)

// renderLegend fills a Grafana legend format with a series' labels.
func renderLegend(format string, labels map[string]string) string {
	return legendVar.ReplaceAllStringFunc(format, func(m string) string {
		return labels[legendVar.FindStringSubmatch(m)[1]]
	})
}

// labelValues evaluates a Grafana label_values(selector, label) variable query against
// Prometheus' series API.
func labelValues(t *testing.T, base, query string, at time.Time) []string {
	t.Helper()
	m := regexp.MustCompile(`^label_values\((.+),\s*([A-Za-z_][A-Za-z0-9_]*)\)$`).FindStringSubmatch(query)
	if m == nil {
		t.Fatalf("variable query %q is not label_values(selector, label)", query)
	}
	v := url.Values{"match[]": {m[1]}, "start": {fmt.Sprint(at.Add(-time.Minute).Unix())}, "end": {fmt.Sprint(at.Unix())}}
	resp, err := http.Get(base + "/api/v1/series?" + v.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Status string
		Data   []map[string]string
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Status != "success" {
		t.Fatalf("series %s: %v %s", m[1], err, r.Status)
	}
	set := map[string]bool{}
	for _, s := range r.Data {
		if x := s[m[2]]; x != "" {
			set[x] = true
		}
	}
	var out []string
	for x := range set {
		out = append(out, x)
	}
	sort.Strings(out)
	return out
}
