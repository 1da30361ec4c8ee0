package main

import (
	"github.com/alecthomas/kingpin/v2"
)

// fleetFlags are the flags of the configuration file, its reload and /probe.
type fleetFlags struct {
	file      *string
	check     *bool
	lifecycle *bool
	probeMax  *int
}

// exitCheckFailed is --config.check's exit code for an invalid configuration.
const exitCheckFailed = 1

func addFleetFlags(app *kingpin.Application) *fleetFlags {
	return &fleetFlags{
		file: app.Flag("config.file",
			"YAML configuration file: named sources of every kind (with labels, timeouts, TLS and password files) and the probe modules of /probe. Used together with the source flags; reloaded on SIGHUP and POST /-/reload. See docs/configuration.md.").
			PlaceHolder("FILE").String(),
		check: app.Flag("config.check",
			"Check the configuration (flags and --config.file) and exit: 0 when it is valid, 1 with the reason when it is not. Nothing is served.").
			Default("false").Bool(),
		lifecycle: app.Flag("web.enable-lifecycle",
			"Reload the configuration file on POST /-/reload (as Prometheus does).").
			Default("false").Bool(),
		probeMax: app.Flag("probe.max-concurrent",
			"Most /probe requests served at once; more are answered 503. Memory is bounded by this times the module's read limit.").
			Default("64").Int(),
	}
}
