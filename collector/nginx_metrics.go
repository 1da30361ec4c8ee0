package collector

import "github.com/wsgi-exporter/wsgi_exporter/nginx"

// nginx's stub_status metrics: every family and the translation of a page (nginx.StubStatus)
// into them. Every series also carries source (NginxKind's source label).
//
// The names and help texts are nginx-prometheus-exporter's (stub_status collector), so its
// dashboards work unchanged; we add the source label. nginx_connections_accepted and _handled
// are counters without the _total suffix there. We keep the names but expose them untyped:
// promtool check metrics rejects a counter without _total, and the OpenMetrics encoder of
// client_golang already reports such counters as "unknown" to keep their names, so Prometheus
// stores the same series either way and rate() works on them as before.
var (
	nginxConnectionsActive   = gauge(NginxKind, "nginx_connections_active", "Active client connections")
	nginxConnectionsAccepted = untyped(NginxKind, "nginx_connections_accepted", "Accepted client connections")
	nginxConnectionsHandled  = untyped(NginxKind, "nginx_connections_handled", "Handled client connections")
	nginxConnectionsReading  = gauge(NginxKind, "nginx_connections_reading", "Connections where NGINX is reading the request header")
	nginxConnectionsWriting  = gauge(NginxKind, "nginx_connections_writing", "Connections where NGINX is writing the response back to the client")
	nginxConnectionsWaiting  = gauge(NginxKind, "nginx_connections_waiting", "Idle client connections")
	nginxHTTPRequests        = counter(NginxKind, "nginx_http_requests_total", "Total http requests")
	nginxRequestTime         = counter(NginxKind, "nginx_http_request_time_seconds_total",
		"Sum of the durations of all requests since start, from Tengine's stub_status request_time (millisecond resolution). Tengine only.")
)

// nginxTranslate writes the series of one stub_status page.
func nginxTranslate(w *Writer, st nginx.StubStatus) {
	w.Value(nginxConnectionsActive, float64(st.Active))
	w.Value(nginxConnectionsAccepted, float64(st.Accepted))
	w.Value(nginxConnectionsHandled, float64(st.Handled))
	w.Value(nginxConnectionsReading, float64(st.Reading))
	w.Value(nginxConnectionsWriting, float64(st.Writing))
	w.Value(nginxConnectionsWaiting, float64(st.Waiting))
	w.Value(nginxHTTPRequests, float64(st.Requests))
	if st.HasRequestTime {
		w.Value(nginxRequestTime, float64(st.RequestTimeMillis)/1000)
	}
}
