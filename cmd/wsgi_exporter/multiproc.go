package main

import (
	"fmt"

	"github.com/alecthomas/kingpin/v2"
	"github.com/alecthomas/units"

	"github.com/wsgi-exporter/wsgi_exporter/collector"
	"github.com/wsgi-exporter/wsgi_exporter/gunicorn"
)

type multiprocFlags struct {
	dirs     *[]string
	maxBytes *units.Base2Bytes
	dropDead *bool
	procPath *string
	dirLabel *string
	mmap     *bool
}

func init() {
	kinds = append(kinds, func(app *kingpin.Application) kindFlags {
		return &multiprocFlags{
			dirs: app.Flag("gunicorn.multiproc-dir",
				"prometheus_client multiprocess directory (PROMETHEUS_MULTIPROC_DIR) whose .db files to merge and serve; repeatable.").
				PlaceHolder("DIR").Strings(),
			maxBytes: app.Flag("multiproc.max-bytes",
				"Most bytes read from one multiprocess directory per scrape; more fails the scrape (reason too_large). 0: no limit.").
				Default("1GiB").Bytes(),
			dropDead: app.Flag("multiproc.drop-dead-live-gauges",
				"Leave out live* gauge files of processes that no longer exist (no /proc/<pid>), as if the application had called mark_process_dead.").
				Default("false").Bool(),
			procPath: app.Flag("multiproc.proc-path",
				"procfs mount point used to tell live writer pids from dead ones; empty turns the check off (e.g. a sidecar in another pid namespace).").
				Default("/proc").String(),
			dirLabel: app.Flag("multiproc.dir-label",
				"Add the multiproc_dir label to the application's series: auto (only when more than one directory is configured), always, never.").
				Default("auto").Enum("auto", "always", "never"),
			mmap: app.Flag("multiproc.mmap",
				"Keep the .db files mapped read-only between scrapes and read only their values while their layout is unchanged (--no-multiproc.mmap: read every file with pread at every scrape).").
				Default("true").Bool(),
		}
	})
}

func (f *multiprocFlags) build(c common) ([]collector.Source, error) {
	if *f.maxBytes < 0 {
		return nil, fmt.Errorf("--multiproc.max-bytes must not be negative")
	}
	dirLabel := len(*f.dirs) > 1
	switch *f.dirLabel {
	case "always":
		dirLabel = true
	case "never":
		dirLabel = false
	}
	var out []collector.Source
	for _, d := range *f.dirs {
		if d == "" {
			return nil, fmt.Errorf("--gunicorn.multiproc-dir must not be empty")
		}
		out = append(out, collector.NewMultiproc(collector.MultiprocConfig{
			Config: collector.Config{Address: d, Timeout: c.Timeout},
			Options: gunicorn.MultiprocOptions{
				MaxBytes:           int64(*f.maxBytes),
				ProcRoot:           *f.procPath,
				DropDeadLiveGauges: *f.dropDead,
				NoMmap:             !*f.mmap,
			},
			DirLabel: dirLabel,
			Logger:   c.Logger,
		}))
	}
	return out, nil
}
