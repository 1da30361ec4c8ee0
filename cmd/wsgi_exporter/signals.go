package main

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// handleHangups takes SIGHUP from now until the exporter exits; before, its default action
// ended the exporter (exit 129): an in-flight scrape got an empty reply and a unix statsd
// socket file was left behind. reload is called for each SIGHUP; nil while there is no
// configuration file to reload (issue 12 brings one), when SIGHUP is only logged.
func handleHangups(logger *slog.Logger, reload func() error) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	go func() {
		for range ch {
			if reload == nil {
				logger.Info("SIGHUP received; no configuration file to reload")
				continue
			}
			if err := reload(); err != nil {
				logger.Error("SIGHUP received; reloading the configuration failed, the old one stays", "err", err)
			} else {
				logger.Info("SIGHUP received; configuration reloaded")
			}
		}
	}()
}
