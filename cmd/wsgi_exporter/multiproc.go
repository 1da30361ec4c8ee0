package main

import (
	"fmt"
	"strconv"
	"time"

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
	store    *bool
	recheck  *time.Duration
	files    *int
	entries  *int
	series   *int
	keyLen   *units.Base2Bytes
	keyBytes *units.Base2Bytes
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
				"Most bytes (the .db files' used parts, read and folded) of one multiprocess directory; more fails the scrape (reason too_large). 0: no limit.").
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
			store: app.Flag("multiproc.store",
				"Read the files of dead writers (no /proc/<pid>) once and fold them into a store of merged values, instead of reading them at every scrape (--no-multiproc.store: read every file at every scrape). Needs --path.procfs.").
				Default("true").Bool(),
			recheck: app.Flag("multiproc.recheck-interval",
				"List each directory again, stat every folded file and look up every folded writer's pid at least this often, whatever the directory's times and /proc/loadavg say.").
				Default("5m").Duration(),
			files: app.Flag("multiproc.max-files",
				"Most names in one multiprocess directory (.db files and others); more fails the scrape (reason too_large). 0: no limit.").
				Default(strconv.Itoa(multiproc.DefaultMaxFiles)).Int(),
			entries: app.Flag("multiproc.max-entries",
				"Most entries of one directory (read and folded); more fails the scrape (reason too_large). 0: no limit.").
				Default(strconv.Itoa(multiproc.DefaultMaxEntries)).Int(),
			series: app.Flag("multiproc.max-series",
				"Most distinct entry keys held for one directory (each histogram bucket counts) and most merged series served from it (a gauge in all mode counts once per writer); more fails the scrape (reason too_large). 0: no limit.").
				Default(strconv.Itoa(multiproc.DefaultMaxSeries)).Int(),
			keyLen: app.Flag("multiproc.max-key-length",
				"Longest entry key (metric, sample, labels and help) merged; an entry with a longer key is dropped (reason key_too_long). 0: no limit.").
				Default("8KiB").Bytes(),
			keyBytes: app.Flag("multiproc.max-key-bytes",
				"Most bytes of the distinct keys held for one directory; more fails the scrape (reason too_large). 0: no limit.").
				Default("32MiB").Bytes(),
		}
		app.GetFlag("multiproc.proc-path").IsSetByUser(&f.procSet)
		return f
	})
}

func (f *multiprocFlags) build(c common) ([]collector.Source, error) {
	if *f.maxBytes < 0 || *f.files < 0 || *f.entries < 0 || *f.series < 0 || *f.keyLen < 0 || *f.keyBytes < 0 || *f.recheck < 0 {
		return nil, fmt.Errorf("the --multiproc.max-* limits and --multiproc.recheck-interval must not be negative")
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
		NoStore:            !*f.store,
		RecheckInterval:    *f.recheck,
		MaxFiles:           *f.files,
		MaxEntries:         *f.entries,
		MaxSeries:          *f.series,
		MaxKeyLength:       int(*f.keyLen),
		MaxKeyBytes:        int64(*f.keyBytes),
	}
}
