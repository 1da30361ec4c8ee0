package collector

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsgi-exporter/wsgi_exporter/nginx"
)

// The names, types and help texts are nginx-prometheus-exporter's (stub_status collector), so
// its dashboards work unchanged; the counters nginx_connections_accepted and _handled keep
// its names without _total for that reason. We add the source label.
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
	g(nginxConnectionsActive, st.Active)
	c(nginxConnectionsAccepted, st.Accepted)
	c(nginxConnectionsHandled, st.Handled)
	g(nginxConnectionsReading, st.Reading)
	g(nginxConnectionsWriting, st.Writing)
	g(nginxConnectionsWaiting, st.Waiting)
	c(nginxHTTPRequests, st.Requests)
	if st.HasRequestTime {
		ch <- prometheus.MustNewConstMetric(nginxRequestTime, prometheus.CounterValue,
			float64(st.RequestTimeMillis)/1000, source)
	}
}
