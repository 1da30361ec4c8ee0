package main

import (
	"html"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"

	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/wsgi-exporter/wsgi_exporter/collector"
)

// landingConfig lists the endpoints and the configured sources on the landing page. The
// profiling links are shown only when pprof is served (exporter-toolkit shows them when
// Profiling is empty).
func landingConfig(exp *collector.Exporter, metricsPath string, pprof bool) web.LandingConfig {
	var b strings.Builder
	b.WriteString("<h2>Sources</h2>\n")
	if len(exp.Sources()) == 0 {
		b.WriteString("<p>No source is configured.</p>\n")
	} else {
		b.WriteString("<table><tr><th>kind</th><th>name</th><th>address</th></tr>\n")
		for _, s := range exp.Sources() {
			c := s.Config()
			b.WriteString("<tr><td>" + html.EscapeString(s.Kind().Name) + "</td><td>" +
				html.EscapeString(c.SourceName()) + "</td><td>" + html.EscapeString(c.Address) + "</td></tr>\n")
		}
		b.WriteString("</table>\n")
	}
	return web.LandingConfig{
		Name:        "WSGI Exporter",
		Description: "Prometheus exporter for uWSGI, nginx and gunicorn",
		Version:     version.Info(),
		Profiling:   strconv.FormatBool(pprof),
		ExtraHTML:   b.String(),
		ExtraCSS:    "table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 2px 8px; text-align: left; }",
		Links: []web.LandingLinks{
			{Address: metricsPath, Text: "Metrics"},
			{Address: "/-/healthy", Text: "Health"},
		},
	}
}

// addPprof mounts Go's profiling handlers; only with --web.enable-pprof.
func addPprof(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}
