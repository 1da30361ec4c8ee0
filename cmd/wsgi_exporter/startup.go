package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/wsgi-exporter/wsgi_exporter/collector"
)

// Exit codes, documented in docs/operations.md.
const (
	exitOK      = 0 // stopped by SIGTERM or SIGINT; --help, --version
	exitRuntime = 1 // the web server could not listen or failed
	exitConfig  = 2 // a flag, an environment variable, a source or the web config file is invalid
)

// flagError names the flag (or environment variable) whose value kingpin rejected: kingpin
// returns the value's own error, e.g. `time: unknown unit "x" in duration "5x"`, without
// saying which flag it was. Only values that fail to parse are named (durations, sizes,
// numbers, enums, booleans), never a string flag's value.
func flagError(app *kingpin.Application, args []string, err error) error {
	if ctx, cerr := app.ParseContext(args); cerr == nil {
		for _, el := range ctx.Elements {
			f, ok := el.Clause.(*kingpin.FlagClause)
			if !ok || el.Value == nil {
				continue
			}
			if m := f.Model(); sameError(m.Value.Set(*el.Value), err) {
				return fmt.Errorf("--%s: %w", m.Name, err)
			}
		}
	}
	for _, m := range app.Model().Flags {
		if m.Envar == "" {
			continue
		}
		// kingpin ignores an empty variable.
		if v := os.Getenv(m.Envar); v != "" && sameError(m.Value.Set(v), err) {
			return fmt.Errorf("%s (--%s): %w", m.Envar, m.Name, err)
		}
	}
	return err
}

func sameError(a, b error) bool { return a != nil && a.Error() == b.Error() }

// checkWebConfig reads --web.config.file before the exporter listens: exporter-toolkit would
// only read it when the first listener is up, after logging "Listening on".
func checkWebConfig(path string) error {
	if path == "" {
		return nil
	}
	if err := web.Validate(path); err != nil {
		return fmt.Errorf("--web.config.file %s: %w", path, err)
	}
	return nil
}

// logSources lists the configured sources at start, by kind and source label value (which
// holds no credentials), and warns of a multiprocess directory or gunicorn pidfile that does
// not exist: the source is down until it appears.
func logSources(logger *slog.Logger, sources []collector.Source) {
	for _, s := range sources {
		kind, name := s.Kind().Name, s.Config().SourceName()
		logger.Info("source configured", "kind", kind, "source", name)
		var what string
		switch kind {
		case "multiproc":
			what = "multiprocess directory"
		case "gunicorn":
			what = "gunicorn pidfile"
		default:
			continue
		}
		fi, err := os.Stat(s.Config().Address)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			logger.Warn(what+" does not exist: the source is down until it does", "kind", kind, "source", name)
		case err != nil:
			logger.Warn(what+" cannot be read: the source is down until it can", "kind", kind, "source", name, "err", err)
		case kind == "multiproc" && !fi.IsDir():
			logger.Warn(what+" is not a directory: the source is down", "kind", kind, "source", name)
		case kind == "gunicorn" && !fi.Mode().IsRegular():
			logger.Warn(what+" is not a regular file: the source is down", "kind", kind, "source", name)
		}
	}
}
