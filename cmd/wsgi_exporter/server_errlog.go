package main

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// acceptLogInterval is the shortest time between two logged accept errors.
const acceptLogInterval = 10 * time.Second

// serverErrorLog takes net/http's server log lines (http.Server.ErrorLog) into slog with
// levels: an accept error (e.g. too many open files; net/http retries it every 5 ms to 1 s)
// is a warning logged at most once per acceptLogInterval with the number left out; a
// failed TLS handshake is the client's doing and logged at debug level; anything else
// (a panic in a handler) is an error.
type serverErrorLog struct {
	logger *slog.Logger
	now    func() time.Time

	mu           sync.Mutex
	lastAccept   time.Time
	acceptMissed int
}

func newServerErrorLog(logger *slog.Logger) *serverErrorLog {
	return &serverErrorLog{logger: logger, now: time.Now}
}

func (w *serverErrorLog) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	ctx := context.Background()
	switch {
	case strings.HasPrefix(msg, "http: Accept error: "):
		w.mu.Lock()
		now := w.now()
		if !w.lastAccept.IsZero() && now.Sub(w.lastAccept) < acceptLogInterval {
			w.acceptMissed++
			w.mu.Unlock()
			return len(p), nil
		}
		missed := w.acceptMissed
		w.lastAccept, w.acceptMissed = now, 0
		w.mu.Unlock()
		w.logger.Warn("accepting a connection failed; retrying", "err", strings.TrimPrefix(msg, "http: Accept error: "),
			"similar_errors_not_logged", missed)
	case strings.HasPrefix(msg, "http: TLS handshake error from "):
		w.logger.Log(ctx, slog.LevelDebug, "TLS handshake failed", "err", strings.TrimPrefix(msg, "http: TLS handshake error from "))
	default:
		w.logger.Error("http server", "err", msg)
	}
	return len(p), nil
}
