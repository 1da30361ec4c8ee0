// Package nginx reads nginx's stub_status page (ngx_http_stub_status_module) over HTTP, HTTPS
// or a unix socket and returns it as typed data. It knows nothing of Prometheus.
package nginx

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// StubStatus is one stub_status page. Connection and request numbers are nginx's own
// counters since its start (the shared-memory totals of all workers).
type StubStatus struct {
	Active   uint64 // open client connections, Waiting included
	Accepted uint64 // client connections accepted since start
	Handled  uint64 // client connections handled since start (< Accepted at a resource limit)
	Requests uint64 // client requests since start
	Reading  uint64 // connections whose request header nginx is reading
	Writing  uint64 // connections nginx is writing a response to
	Waiting  uint64 // idle keep-alive connections

	// HasRequestTime is true for Tengine's 4-column form; RequestTimeMillis is then the sum of
	// the durations of every request since start, in milliseconds.
	HasRequestTime    bool
	RequestTimeMillis uint64
}

const (
	headerNginx   = "server accepts handled requests"
	headerTengine = "server accepts handled requests request_time"
)

// ParseStubStatus parses a stub_status body as nginx (and Tengine) print it:
//
//	Active connections: 6
//	server accepts handled requests
//	 3497 3497 2793288
//	Reading: 0 Writing: 1 Waiting: 5
//
// where every line but the header ends with a space (Tengine's numbers line does not).
// Spaces around and between fields, CRLF line ends, a missing final newline and blank lines
// at the end are accepted. Anything else — a missing or extra line, a word out of place, a
// negative number or one beyond 64 bits — is an error with reason decode that names the line.
func ParseStubStatus(b []byte) (StubStatus, error) {
	var st StubStatus
	lines := splitLines(b)
	for len(lines) > 0 && len(bytes.TrimSpace(lines[len(lines)-1])) == 0 {
		lines = lines[:len(lines)-1]
	}
	if len(lines) == 0 {
		return StubStatus{}, decodeErr(0, nil, "empty body, not a stub_status page")
	}
	if len(lines) < 4 {
		return StubStatus{}, decodeErr(0, nil, "only %d of the 4 stub_status lines", len(lines))
	}

	// Line 1: "Active connections: N".
	f := fields(lines[0])
	if len(f) != 3 || f[0] != "Active" || f[1] != "connections:" {
		return StubStatus{}, decodeErr(1, lines[0], `want "Active connections: N"`)
	}
	var err error
	if st.Active, err = number(f[2]); err != nil {
		return StubStatus{}, decodeErr(1, lines[0], "active connections: %v", err)
	}

	// Line 2: the column header, which tells nginx from Tengine.
	switch strings.Join(fields(lines[1]), " ") {
	case headerNginx:
	case headerTengine:
		st.HasRequestTime = true
	default:
		return StubStatus{}, decodeErr(2, lines[1], "want %q or %q", headerNginx, headerTengine)
	}

	// Line 3: the counters under the header.
	f = fields(lines[2])
	want := 3
	if st.HasRequestTime {
		want = 4
	}
	if len(f) != want {
		return StubStatus{}, decodeErr(3, lines[2], "want %d numbers under the header, found %d fields", want, len(f))
	}
	names := [...]string{"accepts", "handled", "requests", "request_time"}
	dst := [...]*uint64{&st.Accepted, &st.Handled, &st.Requests, &st.RequestTimeMillis}
	for i := range f {
		if *dst[i], err = number(f[i]); err != nil {
			return StubStatus{}, decodeErr(3, lines[2], "%s: %v", names[i], err)
		}
	}

	// Line 4: "Reading: R Writing: W Waiting: X".
	f = fields(lines[3])
	if len(f) != 6 || f[0] != "Reading:" || f[2] != "Writing:" || f[4] != "Waiting:" {
		return StubStatus{}, decodeErr(4, lines[3], `want "Reading: R Writing: W Waiting: X"`)
	}
	for i, d := range []*uint64{&st.Reading, &st.Writing, &st.Waiting} {
		if *d, err = number(f[2*i+1]); err != nil {
			return StubStatus{}, decodeErr(4, lines[3], "%s %v", f[2*i], err)
		}
	}
	if len(lines) > 4 {
		return StubStatus{}, decodeErr(5, lines[4], "unexpected line after the 4 stub_status lines")
	}
	return st, nil
}

// splitLines splits on "\n", dropping one "\r" before it and the empty rest after a final
// newline.
func splitLines(b []byte) [][]byte {
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	for i, l := range lines {
		lines[i] = bytes.TrimSuffix(l, []byte("\r"))
	}
	return lines
}

// fields splits a line on spaces and tabs only (strings.Fields would also accept other
// Unicode spaces, which nginx never writes).
func fields(l []byte) []string {
	return strings.FieldsFunc(string(l), func(r rune) bool { return r == ' ' || r == '\t' })
}

// number parses a decimal counter as nginx prints it (%uA: unsigned, no sign, no grouping).
func number(s string) (uint64, error) {
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("negative number %q", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not a decimal number", s)
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q does not fit in 64 bits", s)
	}
	return n, nil
}

// maxQuoted bounds how much of a bad line an error message repeats.
const maxQuoted = 80

func decodeErr(line int, text []byte, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if line == 0 {
		return fetch.Errorf(fetch.ReasonDecode, "stub_status: %s", msg)
	}
	q := text
	if len(q) > maxQuoted {
		q = append(q[:maxQuoted:maxQuoted], "…"...)
	}
	return fetch.Errorf(fetch.ReasonDecode, "stub_status line %d %q: %s", line, q, msg)
}
