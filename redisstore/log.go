package redisstore

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// The client library logs through a process-wide logger of its own (to stderr by default):
// dial failures the store reports as errors anyway, pool details. It goes to the exporter's
// log at debug level instead.

type libLogger struct{ l *slog.Logger }

func (g libLogger) Printf(ctx context.Context, format string, v ...any) {
	if g.l != nil {
		g.l.DebugContext(ctx, fmt.Sprintf(format, v...), "lib", "go-redis")
	}
}

func init() { redis.SetLogger(libLogger{}) }

// SetLogger sends the client library's messages to l at debug level.
func SetLogger(l *slog.Logger) { redis.SetLogger(libLogger{l}) }
