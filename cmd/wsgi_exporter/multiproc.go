package main

import (
	"fmt"

	"github.com/alecthomas/kingpin/v2"
	"github.com/alecthomas/units"

	"github.com/wsgi-exporter/wsgi_exporter/collector"
	"github.com/wsgi-exporter/wsgi_exporter/multiproc"
)

type multiprocFlags struct {
	dirs     *[]string
	oldDirs  *[]string
	maxBytes *units.Base2Bytes
	dropDead *bool
	procPath *string
	procSet  bool
	dirLabel *string
	mmap     *bool
}

func init() {
	kinds = append(kinds, func(app *kingpin.Application) kindFlags {
		f := &multiprocFlags{
			dirs: app.Flag("multiproc.dir",
				"prometheus_client multiprocess directory (PROMETHEUS_MULTIPROC_DIR) whose .db files to merge and serve, for gunicorn and uWSGI apps alike; repeatable.").
				PlaceHolder("DIR").Strings(),
			oldDirs: app.Flag("gunicorn.multiproc-dir", "Old name of --multiproc.dir.").
				Hidden().PlaceHolder("DIR").Strings(),
			maxBytes: app.Flag("multiproc.max-bytes",
				"Most bytes read from one multiprocess directory per scrape; more fails the scrape (reason too_large). 0: no limit.").
				Default("1GiB").Bytes(),
			dropDead: app.Flag("multiproc.drop-dead-live-gauges",
				"Leave out live* gauge files of processes that no longer exist (no /proc/<pid>), as if the application had called mark_process_dead.").
				Default("false").Bool(),
			procPath: app.Flag("multiproc.proc-path",
				"Old name of --path.procfs, for the multiprocess directories only (empty: no liveness check).").
				Hidden().String(),
			dirLabel: app.Flag("multiproc.dir-label",
				"Add the multiproc_dir label to the application's series: auto (only when more than one directory is configured), always, never.").
				Default("auto").Enum("auto", "always", "never"),
			mmap: app.Flag("multiproc.mmap",
				"Keep the .db files mapped read-only between scrapes and read only their values while their layout is unchanged (--no-multiproc.mmap: read every file with pread at every scrape).").
				Default("true").Bool(),
		}
		app.GetFlag("multiproc.proc-path").IsSetByUser(&f.procSet)
		return f
	})
}

func (f *multiprocFlags) build(c common) ([]collector.Source, error) {
	if *f.maxBytes < 0 {
		return nil, fmt.Errorf("--multiproc.max-bytes must not be negative")
	}
	dirLabel := len(f.allDirs()) > 1
	switch *f.dirLabel {
	case "always":
		dirLabel = true
	case "never":
		dirLabel = false
	}
	var out []collector.Source
	for _, d := range f.allDirs() {
		if d == "" {
			return nil, fmt.Errorf("--multiproc.dir must not be empty")
		}
		s, err := collector.NewMultiproc(collector.Config{Address: d, Timeout: c.Timeout},
			collector.MultiprocOptions{Options: f.options(c), DirLabel: dirLabel, Logger: c.Logger})
		if err != nil {
			return nil, fmt.Errorf("--multiproc.dir %s: %w", d, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// allDirs is every directory given, under the flag's name and its old name.
func (f *multiprocFlags) allDirs() []string {
	return append(append([]string(nil), *f.dirs...), *f.oldDirs...)
}

// options are the reader's options; the old --multiproc.proc-path, when given, wins over
// --path.procfs (an empty one turns the liveness check off).
func (f *multiprocFlags) options(c common) multiproc.Options {
	procfs := c.ProcFS
	if f.procSet {
		procfs = *f.procPath
	}
	return multiproc.Options{
		MaxBytes:           int64(*f.maxBytes),
		ProcRoot:           procfs,
		DropDeadLiveGauges: *f.dropDead,
		NoMmap:             !*f.mmap,
	}
}
