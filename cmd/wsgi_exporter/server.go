package main

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/exporter-toolkit/web"
)

// The HTTP server's bounds. An idle keep-alive connection used to be held forever (only
// ReadHeaderTimeout was set): 2,000 idle clients held 2,010 fds, and under a 300-fd limit
// 300 of them made /metrics unreachable. Now every connection is bounded in time (idle,
// header, whole request) and their number is bounded by --web.max-connections.
const (
	// readHeaderTimeout bounds the wait for a request's header once its first byte came.
	readHeaderTimeout = 10 * time.Second
	// writeMargin is added to the longest scrape for the read and write timeouts: time to
	// encode and send the answer after the sources' deadline.
	writeMargin = 30 * time.Second
	// fdReserve is kept free of connections under the open-file limit for the exporter's own
	// files (listeners, statsd sockets, logs), plus fdsPerSource for each source (at most two
	// reads of a source at once).
	fdReserve    = 32
	fdsPerSource = 2
	// minConnections is the fewest connections served, however low the open-file limit.
	minConnections = 16
)

// serverFlags are the limits of the HTTP server.
type serverFlags struct {
	maxConnections  *int
	idleTimeout     *time.Duration
	shutdownTimeout *time.Duration
}

func addServerFlags(app *kingpin.Application) *serverFlags {
	return &serverFlags{
		maxConnections: app.Flag("web.max-connections",
			"Most HTTP connections open at once; more wait in the kernel's listen queue until one closes. Lowered, with a warning, to fit the open-file limit (see docs/operations.md).").
			Default("256").Int(),
		idleTimeout: app.Flag("web.idle-timeout",
			"How long an idle keep-alive connection is kept open.").
			Default("1m").Duration(),
		shutdownTimeout: app.Flag("web.shutdown-timeout",
			"Longest wait on SIGTERM/SIGINT for requests in flight to finish. 0: as long as the longest scrape can take (the larger of --scrape.max-timeout and --scrape.timeout, plus 30s).").
			Default("0s").Duration(),
	}
}

// check refuses limits that cannot work.
func (f *serverFlags) check() error {
	switch {
	case *f.maxConnections < 1:
		return fmt.Errorf("--web.max-connections must be at least 1, got %d", *f.maxConnections)
	case *f.idleTimeout <= 0:
		return fmt.Errorf("--web.idle-timeout must be positive, got %v", *f.idleTimeout)
	case *f.shutdownTimeout < 0:
		return fmt.Errorf("--web.shutdown-timeout must not be negative, got %v", *f.shutdownTimeout)
	}
	return nil
}

// serverConfig is what serve needs.
type serverConfig struct {
	handler http.Handler
	toolkit *web.FlagConfig
	logger  *slog.Logger
	// longestScrape is the longest a scrape may take: max(--scrape.max-timeout, --scrape.timeout).
	longestScrape time.Duration
	// sources is the number of configured sources, for the open-file budget.
	sources int
	flags   *serverFlags
	// stopRunners stops the background sources (statsd listeners) and waits for them to
	// clean up (a unix socket file is removed).
	stopRunners func()
}

// writeTimeout is the server's read and write timeout: longer than any scrape.
func (c serverConfig) writeTimeout() time.Duration { return c.longestScrape + writeMargin }

// shutdownGrace is how long SIGTERM waits for requests in flight.
func (c serverConfig) shutdownGrace() time.Duration {
	if d := *c.flags.shutdownTimeout; d > 0 {
		return d
	}
	return c.writeTimeout()
}

// newServer returns the HTTP server with its timeouts. ReadTimeout is as long as
// WriteTimeout on purpose: net/http cancels a request's context when ReadTimeout passes
// while the handler runs, which would cut a long scrape.
func newServer(c serverConfig) *http.Server {
	return &http.Server{
		Handler:           c.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       c.writeTimeout(),
		WriteTimeout:      c.writeTimeout(),
		IdleTimeout:       *c.flags.idleTimeout,
		ErrorLog:          log.New(newServerErrorLog(c.logger), "", 0),
	}
}

// connectionLimit fits --web.max-connections under the open-file limit (Go raised the soft
// limit to the hard one, less one, at start), keeping fdReserve + fdsPerSource per source
// free, so that accepting never fails for want of a file descriptor.
func connectionLimit(c serverConfig) int {
	want := *c.flags.maxConnections
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		c.logger.Warn("cannot read the open-file limit; --web.max-connections taken as it is", "err", err)
		return want
	}
	reserve := uint64(fdReserve + fdsPerSource*c.sources)
	room := uint64(minConnections)
	if lim.Cur > reserve+minConnections {
		room = lim.Cur - reserve
	}
	if uint64(want) > room {
		c.logger.Warn("--web.max-connections lowered to fit the open-file limit", "wanted", want, "max_connections", room,
			"open_file_limit", lim.Cur, "reserved_fds", reserve)
		return int(room)
	}
	return want
}

// serve runs the HTTP server until ctx ends (SIGTERM/SIGINT), then waits for the requests in
// flight (up to the shutdown grace) and stops the background sources. It returns the exit
// status. stopSignals restores the default action of SIGTERM/SIGINT: a second one ends the
// process at once.
func serve(ctx context.Context, stopSignals func(), c serverConfig) int {
	maxConns := connectionLimit(c)
	listeners, err := listen(c.toolkit, maxConns)
	if err != nil {
		c.logger.Error("web server failed", "err", err)
		c.stopRunners()
		return 1
	}
	srv := newServer(c)
	c.logger.Info("web server limits", "max_connections", maxConns, "idle_timeout", srv.IdleTimeout,
		"read_header_timeout", srv.ReadHeaderTimeout, "write_timeout", srv.WriteTimeout, "shutdown_grace", c.shutdownGrace())
	errc := make(chan error, 1)
	go func() { errc <- web.ServeMultiple(listeners, srv, c.toolkit, c.logger) }()
	select {
	case err := <-errc:
		c.logger.Error("web server failed", "err", err)
		c.stopRunners()
		return 1
	case <-ctx.Done():
	}
	stopSignals()
	grace := c.shutdownGrace()
	c.logger.Info("shutting down: waiting for requests in flight", "grace", grace)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		c.logger.Warn("requests still in flight at the end of the shutdown grace were cut", "grace", grace, "err", err)
		_ = srv.Close()
	}
	c.stopRunners()
	c.logger.Info("stopped")
	return 0
}
