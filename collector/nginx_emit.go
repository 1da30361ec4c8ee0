package collector

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsgi-exporter/wsgi_exporter/nginx"
)

// The names and help texts are nginx-prometheus-exporter's (stub_status collector), so its
// dashboards work unchanged; we add the source label. nginx_connections_accepted and _handled
// are counters without the _total suffix there. We keep the names but expose them untyped:
// promtool check metrics rejects a counter without _total, and the OpenMetrics encoder of
// client_golang already reports such counters as "unknown" to keep their names, so Prometheus
// stores the same series either way and rate() works on them as before.
func nginxDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("nginx_"+name, help, []string{NginxKind.SourceLabel}, nil)
}

var (
	nginxConnectionsActive   = nginxDesc("connections_active", "Active client connections")
	nginxConnectionsAccepted = nginxDesc("connections_accepted", "Accepted client connections")
	nginxConnectionsHandled  = nginxDesc("connections_handled", "Handled client connections")
	nginxConnectionsReading  = nginxDesc("connections_reading", "Connections where NGINX is reading the request header")
	nginxConnectionsWriting  = nginxDesc("connections_writing", "Connections where NGINX is writing the response back to the client")
	nginxConnectionsWaiting  = nginxDesc("connections_waiting", "Idle client connections")
	nginxHTTPRequests        = nginxDesc("http_requests_total", "Total http requests")
	nginxRequestTime         = nginxDesc("http_request_time_seconds_total",
		"Sum of the durations of all requests since start, from Tengine's stub_status request_time (millisecond resolution). Tengine only.")
)

// emitNginx builds the metrics of one stub_status page.
func emitNginx(ch chan<- prometheus.Metric, source string, st nginx.StubStatus) {
	g := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), source)
	}
	c := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), source)
	}
	u := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.UntypedValue, float64(v), source)
	}
	g(nginxConnectionsActive, st.Active)
	u(nginxConnectionsAccepted, st.Accepted)
	u(nginxConnectionsHandled, st.Handled)
	g(nginxConnectionsReading, st.Reading)
	g(nginxConnectionsWriting, st.Writing)
	g(nginxConnectionsWaiting, st.Waiting)
	c(nginxHTTPRequests, st.Requests)
	if st.HasRequestTime {
		ch <- prometheus.MustNewConstMetric(nginxRequestTime, prometheus.CounterValue,
			float64(st.RequestTimeMillis)/1000, source)
	}
}
