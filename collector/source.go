// Package collector turns the typed data of the system packages (uwsgi, nginx, gunicorn) into
// Prometheus metrics. It owns the per-source bookkeeping every kind shares: the <kind>_up
// gauge, the scrape duration, the failed-scrape counter, deadlines and concurrency.
package collector

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config is the typed configuration of one source. Flags build it today; a config file or a
// multi-target /probe endpoint can build the same value later without touching the sources.
type Config struct {
	Kind    string            // the kind's name, e.g. "uwsgi"
	Address string            // where to read it; a source shows it with secrets hidden (fetch.Redact)
	Name    string            // label value that tells sources of one kind apart; default Address
	Timeout time.Duration     // deadline of one scrape when Prometheus sends no scrape timeout
	Labels  map[string]string // constant labels added to every series of this source
}

// SourceName is the value of the source label: Name, or Address when Name is empty.
func (c Config) SourceName() string {
	if c.Name != "" {
		return c.Name
	}
	return c.Address
}

// Kind describes a kind of source.
type Kind struct {
	Name        string // metric prefix and value of the kind label, e.g. "uwsgi"
	SourceLabel string // label holding Config.SourceName() on every series of the kind
	Title       string // what the source is, for help texts and the landing page
}

// Emit sends a finished scrape's metrics. It runs after the I/O is done and must not block on
// I/O itself.
type Emit func(ch chan<- prometheus.Metric)

// Source is one configured target.
type Source interface {
	Kind() Kind
	Config() Config
	// Scrape reads the target under ctx and returns what to emit. An error makes the source
	// down for this scrape; its reason comes from fetch.ReasonOf.
	Scrape(ctx context.Context) (Emit, error)
}

// Expander is a Source whose address stands for several targets (a glob of unix sockets). It
// is expanded at every scrape; each target it returns is scraped as a source of its own.
type Expander interface {
	Source
	Expand(ctx context.Context) ([]Source, error)
}

// Runner is a Source that works in the background between scrapes (a statsd listener).
// Run blocks until ctx is cancelled.
type Runner interface {
	Source
	Run(ctx context.Context) error
}
