// Package collector turns the typed data of the system packages (uwsgi, nginx, gunicorn,
// multiproc) into Prometheus metrics and serves them. It owns what every kind of source
// shares: the per-source bookkeeping (<kind>_up, the scrape duration, failed scrapes and
// dropped series, deadlines, concurrency, status), and the path from the series to the bytes
// on the wire (see gather.go and handler.go).
//
// Each kind is two files: <kind>.go (its Kind, options, constructor and Scrape) and
// <kind>_metrics.go (its metric families and the translation of its typed data into them).
// CONTRIBUTING.md has the recipe for adding one.
package collector

import (
	"context"
	"fmt"
	"time"
)

// Config is the typed configuration of one source: the part every kind shares. Flags build it
// today; a configuration file or a multi-target /probe endpoint can build the same value. The
// kind's own settings are the second argument of its constructor (New<Kind>(Config, <Kind>Options)).
type Config struct {
	// Kind is the kind's name ("uwsgi", "nginx", ...). The constructor of a kind sets it; a
	// caller may set it too (a configuration file names the kind), and a constructor refuses
	// a Config of another kind.
	Kind    string
	Name    string            // value of the kind's source label; default Address
	Address string            // where to read the source; a source shows it with secrets hidden (fetch.Redact)
	Labels  map[string]string // constant labels added to every series of this source
	Timeout time.Duration     // deadline of one scrape when Prometheus sends no scrape timeout
}

// SourceName is the value of the source label: Name, or Address when Name is empty.
func (c Config) SourceName() string {
	if c.Name != "" {
		return c.Name
	}
	return c.Address
}

// forKind returns c with Kind set to k's name; a Config naming another kind is an error.
func (c Config) forKind(k Kind) (Config, error) {
	if c.Kind != "" && c.Kind != k.Name {
		return c, fmt.Errorf("a source of kind %q given to the %s constructor", c.Kind, k.Name)
	}
	c.Kind = k.Name
	return c, nil
}

// Kind describes a kind of source.
type Kind struct {
	Name        string // metric prefix and value of the kind label, e.g. "uwsgi"
	SourceLabel string // label holding Config.SourceName() on every series of the kind
	Title       string // what the source is, for help texts and the landing page
}

// Source is one configured target.
type Source interface {
	Kind() Kind
	Config() Config
	// Scrape reads the target under ctx and writes its series to w. An error makes the source
	// down for this scrape and the series written are discarded; the reason comes from
	// fetch.ReasonOf. Scrape must not keep w after it returns.
	Scrape(ctx context.Context, w *Writer) error
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
