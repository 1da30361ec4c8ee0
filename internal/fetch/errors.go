// Package fetch holds what every source needs to read a target safely: bounded reads and a
// small vocabulary of failure reasons that the collector turns into the
// wsgi_exporter_scrape_errors_total{reason} counter.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
)

// Reasons a scrape of a source can fail. They are label values: keep the set small and fixed.
const (
	ReasonTimeout    = "timeout"     // the deadline passed before the target answered in full
	ReasonConnect    = "connect"     // the target could not be reached (refused, no such socket or host)
	ReasonRead       = "read"        // the connection broke while reading
	ReasonTooLarge   = "too_large"   // the answer was bigger than the size cap
	ReasonHTTPStatus = "http_status" // an HTTP target answered with a status other than 200
	ReasonDecode     = "decode"      // the answer was read in full but is not what the protocol says
	ReasonNotFound   = "not_found"   // a file, directory or pid the source reads does not exist
	ReasonPermission = "permission"  // the exporter may not read what the source names
	ReasonOther      = "other"       // anything else
)

// Reasons lists every reason, so counters can be initialised to 0 for each.
var Reasons = []string{
	ReasonTimeout, ReasonConnect, ReasonRead, ReasonTooLarge, ReasonHTTPStatus,
	ReasonDecode, ReasonNotFound, ReasonPermission, ReasonOther,
}

// Error is a failure with a reason attached.
type Error struct {
	Reason string
	Err    error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given reason and a formatted message (%w is honoured).
func Errorf(reason, format string, args ...any) error {
	return &Error{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// Wrap attaches a reason to err unless err already carries one. A nil err stays nil.
func Wrap(reason string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Reason: reason, Err: err}
}

// ReasonOf classifies err: an explicit reason wins; then deadlines, dial and file errors are
// recognised; anything else is ReasonOther.
func ReasonOf(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return ReasonTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ReasonTimeout
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		if oe.Op == "dial" {
			return ReasonConnect
		}
		return ReasonRead
	}
	if errors.Is(err, os.ErrNotExist) {
		return ReasonNotFound
	}
	if errors.Is(err, os.ErrPermission) {
		return ReasonPermission
	}
	return ReasonOther
}
