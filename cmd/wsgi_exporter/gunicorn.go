package main

import (
	"fmt"
	"strings"

	"github.com/alecthomas/kingpin/v2"

	"github.com/wsgi-exporter/wsgi_exporter/collector"
	"github.com/wsgi-exporter/wsgi_exporter/gunicorn"
)

// gunicornFlags are the flags of the gunicorn /proc and statsd sources.
type gunicornFlags struct {
	pidfiles        *[]string
	procfs          *string
	statsdAddresses *[]string
	statsdTagLabels *string
	statsdMaxSeries *int
}

func init() {
	kinds = append(kinds, func(app *kingpin.Application) kindFlags {
		return &gunicornFlags{
			pidfiles: app.Flag("gunicorn.pidfile",
				"gunicorn pidfile (gunicorn --pid) whose master and workers to read from /proc (repeatable). A USR2 upgrade's <pidfile>.2 is followed.").
				PlaceHolder("PATH").Strings(),
			procfs: app.Flag("gunicorn.procfs", "Old name of --path.procfs, for gunicorn only.").
				Hidden().String(),
			statsdAddresses: app.Flag("gunicorn.statsd-listen-address",
				"Receive gunicorn's statsd datagrams (gunicorn --statsd-host) on this UDP host:port or unix datagram socket (unix:/path or /path); repeatable.").
				PlaceHolder("ADDRESS").Strings(),
			statsdTagLabels: app.Flag("gunicorn.statsd-tag-labels",
				"Comma-separated dogstatsd tag keys (gunicorn --dogstatsd-tags) kept as labels of the gunicorn_statsd_* series; other tags are ignored.").
				Default("").String(),
			statsdMaxSeries: app.Flag("gunicorn.statsd-max-series",
				"Most combinations of tag-label values kept per statsd listener, besides the untagged one; a new combination takes the place of the least recently updated (counted in gunicorn_statsd_series_evicted_total).").
				Default("16").Int(),
		}
	})
}

func (f *gunicornFlags) build(c common) ([]collector.Source, error) {
	var out []collector.Source
	if len(*f.pidfiles) > 0 {
		procfs, flagName := c.ProcFS, c.ProcFSFlag
		if *f.procfs != "" {
			procfs, flagName = *f.procfs, "--gunicorn.procfs"
		}
		if procfs == "" {
			return nil, fmt.Errorf("--gunicorn.pidfile needs a proc filesystem: %s is empty", flagName)
		}
		reader, err := gunicorn.NewProcReader(procfs)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", flagName, err)
		}
		for _, p := range *f.pidfiles {
			if p == "" {
				return nil, fmt.Errorf("--gunicorn.pidfile: empty path")
			}
			s, err := collector.NewGunicorn(collector.Config{Address: p, Timeout: c.Timeout}, collector.GunicornOptions{Reader: reader})
			if err != nil {
				return nil, fmt.Errorf("--gunicorn.pidfile %s: %w", p, err)
			}
			out = append(out, s)
		}
	}
	if *f.statsdMaxSeries <= 0 {
		return nil, fmt.Errorf("--gunicorn.statsd-max-series must be positive, got %d", *f.statsdMaxSeries)
	}
	sc := gunicorn.StatsdConfig{MaxSeries: *f.statsdMaxSeries}
	for _, t := range strings.Split(*f.statsdTagLabels, ",") {
		if t = strings.TrimSpace(t); t != "" {
			sc.TagLabels = append(sc.TagLabels, t)
		}
	}
	for _, a := range *f.statsdAddresses {
		s, err := collector.NewGunicornStatsd(collector.Config{Address: a, Timeout: c.Timeout}, sc)
		if err != nil {
			return nil, fmt.Errorf("--gunicorn.statsd-listen-address %s: %w", a, err)
		}
		out = append(out, s)
	}
	return out, nil
}
