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
	}
	dropped := 0
	if err == nil {
		for _, n := range out.w.dropped {
			dropped += n
		}
	}
	c := e.sourceCounters(k, name)
	key := k + "\x00" + name
	e.mu.Lock()
	if err != nil {
		c.errors[reasonIndex(reason)]++
	}
	for i, n := range out.w.dropped {
		if err == nil {
			c.dropped[i] += float64(n)
		}
	}
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

// The core's counters of every source, written with every answer.
var (
	scrapeErrors  = counter(Kind{}, "wsgi_exporter_scrape_errors_total", "Failed scrapes of a source, by reason.", "kind", "source", "reason")
	seriesDropped = counter(Kind{}, "wsgi_exporter_series_dropped_total",
		"Series of a source left out of answers, by reason: series_limit (over --scrape.max-series-per-source), label_value_too_long (over --scrape.max-label-value-length), invalid_label_value (not UTF-8).",
		"kind", "source", "reason")
)

// sourceCounters are a source's failed scrapes by reason (reasons' order) and dropped series
// by reason (DropReasons' order), since the exporter started or the source appeared.
type sourceCounters struct {
	kind, source string
	errors       []float64 // len(reasons)
	dropped      [3]float64
}

// reasonIndex is the index of a failure's reason in reasons ("other" for one it lacks).
func reasonIndex(reason string) int {
	if i := slices.Index(reasons, reason); i >= 0 {
		return i
	}
	return slices.Index(reasons, fetch.ReasonOther)
}

// writeCounters writes every source's counters to w (a Writer of no kind).
func (e *Exporter) writeCounters(w *Writer) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.counters {
		for i, r := range reasons {
			w.core(scrapeErrors, c.errors[i], c.kind, c.source, r)
		}
		for i, r := range DropReasons {
			w.core(seriesDropped, c.dropped[i], c.kind, c.source, r)
		}
	}
}

// errorCount is a source's count of failed scrapes for reason (tests).
func (e *Exporter) errorCount(kind, source, reason string) float64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c := e.counters[kind+"\x00"+source]; c != nil {
		return c.errors[reasonIndex(reason)]
	}
	return -1
}

// droppedCount is a source's count of dropped series for reason (tests).
func (e *Exporter) droppedCount(kind, source, reason string) float64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c := e.counters[kind+"\x00"+source]; c != nil {
		return c.dropped[slices.Index(DropReasons, reason)]
	}
	return -1
}

// countedSources is the number of sources with counters (tests).
func (e *Exporter) countedSources() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.counters)
}
