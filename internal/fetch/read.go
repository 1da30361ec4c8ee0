package fetch

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"
)

// ReadAll reads r to EOF but never more than limit bytes: a longer stream is an error with
// ReasonTooLarge, after reading at most limit+1 bytes.
func ReadAll(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		if ReasonOf(err) == ReasonTimeout {
			return nil, Wrap(ReasonTimeout, err)
		}
		return nil, Wrap(ReasonRead, err)
	}
	if int64(len(b)) > limit {
		return nil, Errorf(ReasonTooLarge, "response larger than the %d byte limit", limit)
	}
	return b, nil
}

// ReadConn reads a stream connection to EOF under ctx's deadline and the size limit, then
// closes it. Cancelling ctx interrupts a blocked read.
func ReadConn(ctx context.Context, conn net.Conn, limit int64) ([]byte, error) {
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(dl); err != nil {
			return nil, Wrap(ReasonRead, err)
		}
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	b, err := ReadAll(conn, limit)
	// A read that hits the socket deadline (set to ctx's deadline) can return before ctx itself
	// reports expiry: both are the scrape running out of time.
	if err != nil && (ctx.Err() != nil || ReasonOf(err) == ReasonTimeout) {
		if ctx.Err() != nil {
			return nil, Errorf(ReasonTimeout, "reading: %w", ctx.Err())
		}
		return nil, Errorf(ReasonTimeout, "reading: %w", context.DeadlineExceeded)
	}
	if err != nil {
		return nil, fmt.Errorf("reading: %w", err)
	}
	return b, nil
}
