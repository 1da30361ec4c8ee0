package collector

import (
	"slices"

	"github.com/wsgi-exporter/wsgi_exporter/multiproc"
	"github.com/wsgi-exporter/wsgi_exporter/redisstore"
)

// A Redis store's metrics: the store's health families, and the translation of a merged
// store (redisstore.Snapshot) into them and into the application's own families (written as a
// multiprocess directory's are: writeAppFamilies). The health series carry redis_url
// (MultiprocRedisKind's source label); the application's carry it only with URLLabel.
var (
	mrKeys = gauge(MultiprocRedisKind, "multiproc_redis_keys",
		"Metric keys read from the store in the last scrape, by metric type.", "type")
	mrProcesses = gauge(MultiprocRedisKind, "multiproc_redis_processes",
		"Distinct worker pids among the metric keys read in the last scrape.")
	mrReadBytes = gauge(MultiprocRedisKind, "multiproc_redis_read_bytes",
		"Bytes received from Redis in the last scrape.")
	mrRoundTrips = gauge(MultiprocRedisKind, "multiproc_redis_round_trips",
		"Pipelines sent to Redis in the last scrape.")
	mrEntries = gauge(MultiprocRedisKind, "multiproc_redis_entries",
		"Samples merged in the last scrape: metric keys read, and vanished entries kept.")
	mrVanished = gauge(MultiprocRedisKind, "multiproc_redis_vanished_entries",
		"Vanished counter, histogram and summary entries whose last values still count, by state: held per worker (within --redis.resume-window), folded into their series.", "state")
	mrFamilies = gauge(MultiprocRedisKind, "multiproc_redis_families",
		"Application metric families merged from the store in the last scrape.")
	mrDropped = counter(MultiprocRedisKind, "multiproc_redis_entries_dropped_total",
		"Entries or series of the application left out of a scrape's output, by reason.", "reason")
)

var mrDropReasons = sorted(append(slices.Clone(redisstore.Reasons),
	multiproc.EntryReasonBadSample, multiproc.EntryReasonTypeClash,
	mpReasonLabelConflict, mpReasonNameConflict, mpReasonInvalid)...)

// The store's names join the names no application family may take, whichever source's it is.
func init() {
	mpReservedNames[MultiprocRedisKind.Name+"_up"] = true
	for _, f := range []*Family{mrKeys, mrProcesses, mrReadBytes, mrRoundTrips, mrEntries, mrVanished,
		mrFamilies, mrDropped} {
		mpReservedNames[f.Name] = true
	}
}

// translate writes the application's series, then the store's health.
func (s *MultiprocRedis) translate(w *Writer, snap *redisstore.Snapshot, claims *nameClaims) {
	drops := writeAppFamilies(w, snap.Families, s.opts.URLLabel, claims, s.logConflict)

	s.mu.Lock()
	for r, n := range drops {
		s.dropped[r] += float64(n)
	}
	writeByReason(w, mrDropped, s.dropped, mrDropReasons)
	s.mu.Unlock()

	for _, t := range mpTypes {
		w.Value(mrKeys, float64(snap.Keys[t]), t)
	}
	w.Value(mrProcesses, float64(snap.PIDs))
	w.Value(mrReadBytes, float64(snap.Bytes))
	w.Value(mrRoundTrips, float64(snap.RoundTrips))
	w.Value(mrEntries, float64(snap.Entries))
	w.Value(mrVanished, float64(snap.Folded), "folded")
	w.Value(mrVanished, float64(snap.Held), "held")
	w.Value(mrFamilies, float64(len(snap.Families)))
}
