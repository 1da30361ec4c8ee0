package main

import (
	"fmt"

	"github.com/alecthomas/kingpin/v2"

	"github.com/wsgi-exporter/wsgi_exporter/collector"
	"github.com/wsgi-exporter/wsgi_exporter/uwsgi"
)

// uwsgiFlags are the flags of the uWSGI stats sources.
type uwsgiFlags struct {
	statsURIs    *[]string
	maxSize      func() int64 // kingpin's Bytes, read after parsing
	collectCores *bool
	tls          *tlsFlags
}

func init() {
	kinds = append(kinds, func(app *kingpin.Application) kindFlags {
		maxSize := app.Flag("uwsgi.max-response-size",
			"Largest stats document read from a uWSGI stats server; a longer answer fails the scrape with reason too_large.").
			Default("32MiB").Bytes()
		return &uwsgiFlags{
			maxSize: func() int64 { return int64(*maxSize) },
			statsURIs: app.Flag("uwsgi.stats-uri",
				"uWSGI stats server to scrape (repeatable): tcp://host:port, host:port, unix:///path (a glob such as unix:///run/uwsgi/*.sock expands at every scrape), http(s)://… (--stats-http) or file:///path (a saved dump).").
				PlaceHolder("URI").Strings(),
			collectCores: app.Flag("uwsgi.collect-cores",
				"Export per-core series (uwsgi_worker_core_*): one set per thread or async core of every worker, which reaches tens of MB with gevent.").
				Default("false").Bool(),
			tls: addTLSFlags(app, "uwsgi", "https:// stats servers"),
		}
	})
}

func (f *uwsgiFlags) build(c common) ([]collector.Source, error) {
	maxSize := f.maxSize()
	if maxSize <= 0 {
		return nil, fmt.Errorf("--uwsgi.max-response-size must be positive, got %d", maxSize)
	}
	if len(*f.statsURIs) == 0 {
		return nil, nil
	}
	tlsCfg, err := f.tls.config(c.Logger)
	if err != nil {
		return nil, err
	}
	opts := collector.UWSGIOptions{MaxResponseSize: maxSize, CollectCores: *f.collectCores, TLS: tlsCfg}
	var out []collector.Source
	seen := map[string]string{}
	for _, uri := range *f.statsURIs {
		// Two spellings of one address (127.0.0.1:1717 and tcp://127.0.0.1:1717) would read
		// the same server twice under two stats_uri values.
		if a, err := uwsgi.ParseAddress(uri); err == nil {
			if prev, ok := seen[a.String()]; ok {
				return nil, fmt.Errorf("--uwsgi.stats-uri: %q and %q are the same stats server", uwsgi.SourceName(prev), uwsgi.SourceName(uri))
			}
			seen[a.String()] = uri
		}
		s, err := collector.NewUWSGI(collector.Config{Address: uri, Timeout: c.Timeout}, opts)
		if err != nil {
			return nil, fmt.Errorf("--uwsgi.stats-uri: %w", err)
		}
		out = append(out, s)
	}
	return out, nil
}
