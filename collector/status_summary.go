package collector

import (
	"slices"

	dto "github.com/prometheus/client_model/go"
)

// Fact is one figure of a source's last successful scrape, for the landing page's summary
// (uWSGI workers by state, nginx active connections, multiprocess files, Redis store keys,
// gunicorn workers).
type Fact struct {
	Name  string
	Value float64
}

// summaryOf picks a few figures out of the series a source has just written. It reads only
// what the source wrote for this answer: no scrape of its own.
func summaryOf(kind string, w *Writer) []Fact {
	fams := map[string]*famOut{}
	for _, fo := range w.used {
		if fo.f.Type != dto.MetricType_HISTOGRAM {
			fams[fo.f.Name] = fo
		}
	}
	var out []Fact
	// sum adds the family's series; max takes the largest. A family the source did not write
	// gives no fact.
	sum := func(fact, family string) {
		if fo, ok := fams[family]; ok {
			s := 0.0
			for _, v := range fo.values {
				s += v
			}
			out = append(out, Fact{Name: fact, Value: s})
		}
	}
	max := func(fact, family string) {
		if fo := fams[family]; fo != nil && len(fo.values) > 0 {
			x := fo.values[0]
			for _, v := range fo.values[1:] {
				x = maxFloat(x, v)
			}
			out = append(out, Fact{Name: fact, Value: x})
		}
	}
	switch kind {
	case "uwsgi":
		byStatus := map[string]float64{}
		if fo := fams["uwsgi_worker_status"]; fo != nil {
			k, at := len(fo.f.Labels), slices.Index(fo.f.Labels, "status")
			for i, v := range fo.values {
				byStatus[fo.labels[i*k+at]] += v
			}
		}
		for _, s := range []string{"busy", "idle", "cheap", "pause", "sig", "unknown"} {
			if v, ok := byStatus[s]; ok && (v > 0 || s == "busy" || s == "idle") {
				out = append(out, Fact{Name: "workers " + s, Value: v})
			}
		}
		sum("listen queue", "uwsgi_listen_queue_length")
	case "nginx":
		sum("active connections", "nginx_connections_active")
	case "multiproc":
		sum("files", "multiproc_files")
		sum("dead process files", "multiproc_dead_process_files")
	case "multiproc_redis":
		sum("keys", "multiproc_redis_keys")
		sum("processes", "multiproc_redis_processes")
	case "gunicorn":
		sum("workers", "gunicorn_workers")
		max("oldest heartbeat (s)", "gunicorn_worker_heartbeat_age_seconds")
	case "gunicorn_statsd":
		sum("requests", "gunicorn_statsd_requests_total")
		sum("workers", "gunicorn_statsd_workers")
	}
	return out
}

func maxFloat(a, b float64) float64 {
	if b > a {
		return b
	}
	return a
}
