package fetch

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"time"
)

// ReadAll reads r to EOF but never more than limit bytes: a longer stream is an error with
// ReasonTooLarge, after reading at most limit+1 bytes.
//
// The buffer never grows past limit+1 bytes, and the growth is planned back from that size:
// the last step doubles into it, the steps before it quadruple. So a peer that never stops
// costs at most 1.5 times the cap at once (the last buffer and the one before) and about
// 1.7 times it in all allocations, where io.ReadAll's growth by steps of 1.25 cost about 2.3
// times the cap in all and up to twice it at once.
func ReadAll(r io.Reader, limit int64) ([]byte, error) {
	limit = min(max(limit, 0), math.MaxInt-1)
	top := limit + 1 // reading this many bytes proves the stream is too large
	buf := make([]byte, 0, nextSize(firstSize-1, top))
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) >= top {
				break
			}
			nb := make([]byte, len(buf), nextSize(int64(cap(buf)), top))
			copy(nb, buf)
			buf = nb
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			if ReasonOf(err) == ReasonTimeout {
				return nil, Wrap(ReasonTimeout, err)
			}
			return nil, Wrap(ReasonRead, err)
		}
	}
	if int64(len(buf)) > limit {
		return nil, Errorf(ReasonTooLarge, "response larger than the %d byte limit", limit)
	}
	return buf, nil
}

// firstSize is the smallest first buffer ReadAll allocates, unless the cap is smaller.
const firstSize = 512

// nextSize returns the buffer size that follows size c (c >= 1) on the way to top: the
// smallest of top, ceil(top/2), then a quarter of the one before each, that is over c.
func nextSize(c, top int64) int {
	n, next := top, top-top/2
	for next > c {
		n, next = next, (next+3)/4
	}
	return int(n)
}

// ReadConn reads a stream connection to EOF under ctx's deadline and the size limit, then
// closes it. Cancelling ctx interrupts a blocked read.
func ReadConn(ctx context.Context, conn net.Conn, limit int64) ([]byte, error) {
	var b []byte
	err := WithConn(ctx, conn, func(r io.Reader) error {
		var err error
		b, err = ReadAll(r, limit)
		return err
	})
	return b, err
}

// WithConn runs read on a stream connection under ctx: the connection's deadline is ctx's,
// and cancelling ctx interrupts a blocked read at once. It closes the connection. An error of
// read after ctx ended, or caused by the deadline, has reason timeout.
func WithConn(ctx context.Context, conn net.Conn, read func(io.Reader) error) error {
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(dl); err != nil {
			return Wrap(ReasonRead, err)
		}
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	err := read(conn)
	// A read that hits the socket deadline (set to ctx's deadline) can return before ctx itself
	// reports expiry: both are the scrape running out of time.
	if err != nil && (ctx.Err() != nil || ReasonOf(err) == ReasonTimeout) {
		if ctx.Err() != nil {
			return Errorf(ReasonTimeout, "reading: %w", ctx.Err())
		}
		return Errorf(ReasonTimeout, "reading: %w", context.DeadlineExceeded)
	}
	if err != nil {
		return fmt.Errorf("reading: %w", err)
	}
	return nil
}

// ContextReader returns a reader of r that fails with ctx's error, reason timeout, once ctx
// is done: whoever reads (a decoder) stops at its next read after the deadline, even when r
// itself would not (a file).
func ContextReader(ctx context.Context, r io.Reader) io.Reader {
	return &ctxReader{ctx: ctx, r: r}
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, Errorf(ReasonTimeout, "reading: %w", err)
	}
	return c.r.Read(p)
}
