package collector

import (
	"cmp"
	"slices"
	"time"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// SourceStatus is what the exporter knows of one source after its last scrape, for the
// landing page. Messages are the errors of the source packages, which redact addresses;
// nothing read from a target (headers, file content) is put in them.
type SourceStatus struct {
	Kind   string // the kind's name
	Source string // the source label's value
	// Scraped is false until a scrape of the source has ended; the fields below are then zero.
	Scraped    bool
	Up         bool
	LastScrape time.Time     // when the last scrape started
	Duration   time.Duration // how long it took
	Series     int           // series it added to the answer (up and duration not counted)
	Dropped    int           // series it left out (caps; see wsgi_exporter_series_dropped_total)
	// The last failure, which may be older than the last scrape: its time (zero: never
	// failed), reason (a wsgi_exporter_scrape_errors_total reason) and message.
	LastError       time.Time
	LastErrorReason string
	LastErrorMsg    string
	// Summary holds a few figures of the last scrape when it succeeded (status_summary.go).
	Summary []Fact
}

// maxStatusMessage bounds the length of a kept error message.
const maxStatusMessage = 512

// sourceState is a source's status plus what logging needs.
type sourceState struct {
	SourceStatus
	dropping bool // the last scrape dropped series (logged when it starts)
}

// Status returns the status of every source scraped so far (glob targets included, each under
// its own name) and of the configured sources not yet scraped, sorted by kind and source.
func (e *Exporter) Status() []SourceStatus {
	e.mu.Lock()
	out := make([]SourceStatus, 0, len(e.status)+len(e.sources))
	for _, st := range e.status {
		out = append(out, st.SourceStatus)
	}
	e.mu.Unlock()
	for _, s := range e.sources {
		k, name := s.Kind().Name, s.Config().SourceName()
		if !slices.ContainsFunc(out, func(st SourceStatus) bool { return st.Kind == k && st.Source == name }) {
			out = append(out, SourceStatus{Kind: k, Source: name})
		}
	}
	slices.SortFunc(out, func(a, b SourceStatus) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Source, b.Source))
	})
	return out
}

// noteResult records the end of a source's scrape: status, error and drop counters, and log
// lines. A failure is logged at error level when the source starts failing, and again at debug
// level only; the recovery is logged at info level. Dropped series are logged at warning level
// when a source starts dropping.
func (e *Exporter) noteResult(s Source, out *sourceOut, err error) {
	k, name := s.Kind().Name, s.Config().SourceName()
	var reason string
	if err != nil {
		reason = fetch.ReasonOf(err)
		e.errors.WithLabelValues(k, name, reason).Inc()
	}
	dropped := 0
	if err == nil {
		for i, n := range out.w.dropped {
			if n > 0 {
				e.dropped.WithLabelValues(k, name, DropReasons[i]).Add(float64(n))
				dropped += n
			}
		}
	}
	key := k + "\x00" + name
	e.mu.Lock()
	st := e.status[key]
	if st == nil {
		st = &sourceState{SourceStatus: SourceStatus{Kind: k, Source: name}}
		e.status[key] = st
	}
	wasScraped, wasUp, wasDropping := st.Scraped, st.Up, st.dropping
	st.Scraped = true
	st.Up = err == nil
	st.LastScrape = out.start
	st.Duration = out.took
	st.Series, st.Dropped = 0, dropped
	st.Summary = nil
	if err == nil {
		st.Series = out.w.n
		st.Summary = summaryOf(k, out.w)
	} else {
		st.LastError = out.start
		st.LastErrorReason = reason
		st.LastErrorMsg = truncate(err.Error(), maxStatusMessage)
	}
	st.dropping = dropped > 0
	e.mu.Unlock()

	switch {
	case err != nil && (wasUp || !wasScraped):
		e.logger.Error("scrape failed", "kind", k, "source", name, "reason", reason, "err", err)
	case err != nil:
		e.logger.Debug("scrape failed again", "kind", k, "source", name, "reason", reason, "err", err)
	case wasScraped && !wasUp:
		e.logger.Info("scrape recovered", "kind", k, "source", name)
	}
	if dropped > 0 && !wasDropping {
		e.logger.Warn("dropping series of a source (see wsgi_exporter_series_dropped_total)", "kind", k, "source", name,
			"series_limit", out.w.dropped[0], "label_value_too_long", out.w.dropped[1], "invalid_label_value", out.w.dropped[2])
	}
}

// truncate cuts s to at most n bytes, on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
