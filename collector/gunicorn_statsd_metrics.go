package collector

import (
	"slices"
	"strconv"

	"github.com/wsgi-exporter/wsgi_exporter/gunicorn"
)

// gunicorn's statsd metrics: every family and the translation of a listener's state
// (gunicorn.StatsdSnapshot) into them. Every series also carries source (GunicornStatsdKind's
// source label); the families marked "tags" also carry the configured tag labels
// (--gunicorn.statsd-tag-labels), after their own labels.
var (
	gsRequests  = counter(GunicornStatsdKind, "gunicorn_statsd_requests_total", "Requests gunicorn reported (gunicorn.requests), scaled by the sample rate.")                // tags
	gsResponses = counter(GunicornStatsdKind, "gunicorn_statsd_responses_total", "Requests gunicorn reported by HTTP status code (gunicorn.request.status.<code>).", "code") // tags
	gsDuration  = histogram(GunicornStatsdKind, "gunicorn_statsd_request_duration_seconds", "Request durations gunicorn reported (gunicorn.request.duration).")              // tags
	gsWorkers   = gauge(GunicornStatsdKind, "gunicorn_statsd_workers", "Worker count gunicorn last reported (gunicorn.workers; sent only when it changes).")                 // tags
	gsLogs      = counter(GunicornStatsdKind, "gunicorn_statsd_log_messages_total", "Log messages gunicorn reported by level (gunicorn.log.<level>).", "level")              // tags
	gsBacklog   = gauge(GunicornStatsdKind, "gunicorn_statsd_backlog", "Connections waiting in the listen backlog, as last reported (gunicorn.backlog, gunicorn 24.1+).")    // tags

	gsDatagrams   = counter(GunicornStatsdKind, "gunicorn_statsd_datagrams_total", "Datagrams received.")
	gsDropped     = counter(GunicornStatsdKind, "gunicorn_statsd_lines_dropped_total", "Lines (or whole datagrams, for too_long) dropped, by reason.", "reason")
	gsSocketDrops = counter(GunicornStatsdKind, "gunicorn_statsd_socket_drops_total",
		"Datagrams the kernel dropped because the listener's receive buffer was full (read from the socket at each scrape).")
	gsEvicted = counter(GunicornStatsdKind, "gunicorn_statsd_series_evicted_total",
		"Tag-label combinations dropped to make room for a new one (the least recently updated goes; --gunicorn.statsd-max-series).")
	gsLast = gauge(GunicornStatsdKind, "gunicorn_statsd_last_datagram_timestamp_seconds", "When the last datagram arrived, since the unix epoch.")
)

// gsTagged are the families of a set of tag labels.
type gsTagged struct {
	requests, responses, duration, workers, logs, backlog *Family
}

func newGSTagged(tags []string) gsTagged {
	return gsTagged{
		requests: gsRequests.withLabels(tags), responses: gsResponses.withLabels(tags),
		duration: gsDuration.withLabels(tags), workers: gsWorkers.withLabels(tags),
		logs: gsLogs.withLabels(tags), backlog: gsBacklog.withLabels(tags),
	}
}

// gsTranslate writes the series of one snapshot of a listener's state.
func gsTranslate(w *Writer, f gsTagged, snap gunicorn.StatsdSnapshot) {
	w.Value(gsDatagrams, snap.Datagrams)
	w.Value(gsSocketDrops, snap.SocketDrops)
	w.Value(gsEvicted, snap.Evicted)
	for _, r := range gunicorn.DropReasons {
		w.Value(gsDropped, snap.Dropped[r], r)
	}
	if !snap.LastDatagram.IsZero() {
		w.Value(gsLast, float64(snap.LastDatagram.UnixNano())/1e9)
	}
	counts := make([]uint64, len(gunicorn.DurationBuckets))
	var lv []string
	for _, g := range snap.Groups {
		tags := g.TagValues
		w.Value(f.requests, g.Requests, tags...)
		codes := make([]int, 0, len(g.Status))
		for code := range g.Status {
			codes = append(codes, code)
		}
		slices.Sort(codes)
		for _, code := range codes {
			lv = append(append(lv[:0], strconv.Itoa(code)), tags...)
			w.Value(f.responses, g.Status[code], lv...)
		}
		levels := make([]string, 0, len(g.Logs))
		for level := range g.Logs {
			levels = append(levels, level)
		}
		slices.Sort(levels)
		for _, level := range levels {
			lv = append(append(lv[:0], level), tags...)
			w.Value(f.logs, g.Logs[level], lv...)
		}
		for i := range gunicorn.DurationBuckets {
			counts[i] = uint64(g.Buckets[i] + 0.5)
		}
		w.Histogram(f.duration, uint64(g.DurationCount+0.5), g.DurationSum, gunicorn.DurationBuckets, counts, tags...)
		if g.HasWorkers {
			w.Value(f.workers, g.Workers, tags...)
		}
		if g.HasBacklog {
			w.Value(f.backlog, g.Backlog, tags...)
		}
	}
}
