package main

import (
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/version"

	"github.com/wsgi-exporter/wsgi_exporter/collector"
)

// statusSource is what the landing page reads: the exporter's status of every source after
// its last scrape (collector.Exporter.Status).
type statusSource interface {
	Status() []collector.SourceStatus
}

// landingPage is the page at /: the endpoints, a summary per kind of source and the state of
// every source, rendered from the live status at each request. It is server-side HTML with
// its style inline: no script, no external asset. It reads only what the scrapes of
// /metrics recorded; it never scrapes a source itself.
type landingPage struct {
	status      statusSource
	metricsPath string
	pprof       bool
	modules     []moduleView // the configuration file's /probe modules, by name
	now         func() time.Time
}

func newLandingPage(s statusSource, metricsPath string, pprof bool) *landingPage {
	return &landingPage{status: s, metricsPath: metricsPath, pprof: pprof, now: time.Now}
}

// withModules lists the /probe modules of the generation the page belongs to.
func (p *landingPage) withModules(modules map[string]*probeModule) *landingPage {
	p.modules = p.modules[:0]
	for _, name := range slices.Sorted(maps.Keys(modules)) {
		m := modules[name]
		p.modules = append(p.modules, moduleView{Name: name, Kind: m.Kind, Timeout: m.timeout.String(), Capped: m.capped})
	}
	return p
}

// kindTitles names the kinds of source on the page, in this order.
var kindTitles = []struct{ kind, title string }{
	{"uwsgi", "uWSGI"},
	{"nginx", "nginx"},
	{"multiproc", "Multiprocess directories"},
	{"multiproc_redis", "Redis stores"},
	{"gunicorn", "gunicorn (/proc)"},
	{"gunicorn_statsd", "gunicorn (statsd)"},
}

type (
	landingView struct {
		Version     string
		MetricsPath string
		Pprof       bool
		Kinds       []kindView
		Sources     []sourceView
		Modules     []moduleView
	}
	// moduleView is a /probe module: its name, kind and deadline (capped: the module's
	// timeout also caps what a request announces).
	moduleView struct {
		Name, Kind, Timeout string
		Capped              bool
	}
	kindView struct {
		Kind, Title      string
		Sources, Up      int
		Down, NotScraped int
		Facts            []factView
	}
	factView   struct{ Name, Value string }
	sourceView struct {
		Kind, Source string
		State        string // up, down, or pending (not scraped yet)
		LastScrape   string // e.g. "4.2s ago"
		Duration     string
		Error        bool // a failure is known
		ErrorReason  string
		ErrorMsg     string
		ErrorAge     string
		Facts        []factView
	}
)

func (p *landingPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := landingTemplate.Execute(w, p.view()); err != nil {
		http.Error(w, "rendering the landing page failed", http.StatusInternalServerError)
	}
}

// view turns the status into what the template shows.
func (p *landingPage) view() landingView {
	now := p.now()
	v := landingView{Version: version.Info(), MetricsPath: p.metricsPath, Pprof: p.pprof, Modules: p.modules}
	kinds := map[string]*kindView{}
	sums := map[string]map[string]float64{}
	var order []string
	for _, st := range p.status.Status() {
		k := kinds[st.Kind]
		if k == nil {
			k = &kindView{Kind: st.Kind, Title: kindTitle(st.Kind)}
			kinds[st.Kind] = k
			sums[st.Kind] = map[string]float64{}
			order = append(order, st.Kind)
		}
		k.Sources++
		sv := sourceView{Kind: st.Kind, Source: st.Source, State: "pending", LastScrape: "not yet scraped", Duration: "–"}
		switch {
		case !st.Scraped:
			k.NotScraped++
		case st.Up:
			sv.State = "up"
			k.Up++
		default:
			sv.State = "down"
			k.Down++
		}
		if st.Scraped {
			sv.LastScrape = age(now.Sub(st.LastScrape))
			sv.Duration = fmt.Sprintf("%.1f ms", float64(st.Duration)/float64(time.Millisecond))
		}
		if !st.LastError.IsZero() {
			sv.Error, sv.ErrorReason, sv.ErrorMsg, sv.ErrorAge = true, st.LastErrorReason, st.LastErrorMsg, age(now.Sub(st.LastError))
		}
		for _, f := range st.Summary {
			sv.Facts = append(sv.Facts, factView{f.Name, number(f.Value)})
			if _, seen := sums[st.Kind][f.Name]; !seen {
				k.Facts = append(k.Facts, factView{Name: f.Name})
			}
			if strings.HasPrefix(f.Name, "oldest") {
				sums[st.Kind][f.Name] = max(sums[st.Kind][f.Name], f.Value)
			} else {
				sums[st.Kind][f.Name] += f.Value
			}
		}
		v.Sources = append(v.Sources, sv)
	}
	rank := func(kind string) int {
		for i, t := range kindTitles {
			if t.kind == kind {
				return i
			}
		}
		return len(kindTitles)
	}
	sort.SliceStable(order, func(i, j int) bool { return rank(order[i]) < rank(order[j]) })
	sort.SliceStable(v.Sources, func(i, j int) bool { return rank(v.Sources[i].Kind) < rank(v.Sources[j].Kind) })
	for _, kind := range order {
		k := kinds[kind]
		for i := range k.Facts {
			k.Facts[i].Value = number(sums[kind][k.Facts[i].Name])
		}
		v.Kinds = append(v.Kinds, *k)
	}
	return v
}

func kindTitle(kind string) string {
	for _, t := range kindTitles {
		if t.kind == kind {
			return t.title
		}
	}
	return kind
}

// age says how long ago something happened, for a human.
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "just now"
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs ago", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds ago", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm ago", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// number prints a figure without a needless fraction.
func number(v float64) string {
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.1f", v)
}

var landingTemplate = template.Must(template.New("landing").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<meta http-equiv="refresh" content="10">
<title>WSGI Exporter</title>
<style>
body { font-family: -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; margin: 0; color: #222; }
header { background: #e6522c; color: #fff; padding: 1rem; }
header h1 { margin: 0; font-size: 1.4rem; }
header p { margin: .3rem 0 0; font-size: .85rem; }
main { padding: 1rem; }
nav a { margin-right: 1rem; }
.kinds { display: flex; flex-wrap: wrap; gap: .8rem; margin: 1rem 0; }
.kind { border: 1px solid #ccc; border-radius: 4px; padding: .6rem .9rem; min-width: 12rem; }
.kind h3 { margin: 0 0 .3rem; font-size: 1rem; }
.kind p { margin: .15rem 0; font-size: .9rem; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { border-bottom: 1px solid #ddd; padding: .35rem .5rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.state { font-weight: bold; }
tr[data-state="up"] td.state { color: #1a7f37; }
tr[data-state="down"] td.state { color: #cf222e; }
tr[data-state="pending"] td.state { color: #777; }
.error { color: #cf222e; word-break: break-word; }
tr[data-state="up"] .error { color: #777; }
.muted { color: #777; }
</style>
</head>
<body>
<header>
<h1>WSGI Exporter</h1>
<p>Prometheus exporter for uWSGI, nginx and gunicorn &middot; {{.Version}}</p>
</header>
<main>
<nav>
<a href="{{.MetricsPath}}">Metrics</a>
<a href="/-/healthy">Health</a>
{{if .Pprof}}<a href="/debug/pprof/">Profiling</a>{{end}}
</nav>
<p class="muted">The state of each source as the last scrape of <a href="{{.MetricsPath}}">{{.MetricsPath}}</a> left it (this page never reads a source itself). It reloads every 10 s.</p>
{{if not .Sources}}<p id="no-sources">No source is configured{{if .Modules}}: this exporter reads targets through <a href="#probe">/probe</a>{{else}}: see <code>wsgi_exporter --help</code>{{end}}.</p>{{else}}
<section class="kinds">
{{range .Kinds}}<div class="kind" data-kind="{{.Kind}}">
<h3>{{.Title}}</h3>
<p class="count">{{.Up}} of {{.Sources}} up{{if .Down}}, <span class="error">{{.Down}} down</span>{{end}}{{if .NotScraped}}, {{.NotScraped}} not yet scraped{{end}}</p>
{{range .Facts}}<p class="fact" data-fact="{{.Name}}">{{.Name}}: <b>{{.Value}}</b></p>
{{end}}</div>
{{end}}</section>
<table>
<thead><tr><th>kind</th><th>source</th><th>state</th><th>last scrape</th><th>took</th><th>figures</th><th>last error</th></tr></thead>
<tbody>
{{range .Sources}}<tr class="source" data-kind="{{.Kind}}" data-source="{{.Source}}" data-state="{{.State}}">
<td>{{.Kind}}</td>
<td><code>{{.Source}}</code></td>
<td class="state">{{.State}}</td>
<td class="age">{{.LastScrape}}</td>
<td class="took">{{.Duration}}</td>
<td class="figures">{{range $i, $f := .Facts}}{{if $i}}, {{end}}{{$f.Name}} {{$f.Value}}{{end}}</td>
<td>{{if .Error}}<span class="error" data-reason="{{.ErrorReason}}">{{.ErrorReason}}: {{.ErrorMsg}}</span> <span class="muted">({{.ErrorAge}})</span>{{end}}</td>
</tr>
{{end}}</tbody>
</table>
{{end}}
{{if .Modules}}<section id="probe">
<h2>Probe modules</h2>
<p class="muted">Read a target on request: <code>/probe?module=NAME&amp;target=ADDRESS</code>, the target within the module's allow-list (docs/probe.md).</p>
<table>
<thead><tr><th>module</th><th>kind</th><th>deadline</th></tr></thead>
<tbody>
{{range .Modules}}<tr class="module" data-module="{{.Name}}" data-kind="{{.Kind}}"><td><code>{{.Name}}</code></td><td>{{.Kind}}</td><td>{{.Timeout}}{{if .Capped}} (caps the scraper's){{else}} (unless the scraper announces one){{end}}</td></tr>
{{end}}</tbody>
</table>
</section>{{end}}
</main>
</body>
</html>
`))
