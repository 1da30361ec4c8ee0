package uwsgi

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// Transport is how a stats document is read.
type Transport string

// The transports of a stats address.
const (
	TCP  Transport = "tcp"  // tcp://host:port or host:port: the stats server writes JSON and closes
	Unix Transport = "unix" // unix:///path: the same over a unix socket
	HTTP Transport = "http" // http(s)://…: --stats-http
	File Transport = "file" // file:///path: a saved stats document
)

// Address is a parsed stats address.
type Address struct {
	Transport Transport
	Host      string // tcp: host:port
	Path      string // unix, file: absolute path
	URL       string // http: the URL as given
}

// String is the address in URI form; for a bare host:port it is tcp://host:port.
func (a Address) String() string {
	switch a.Transport {
	case TCP:
		return "tcp://" + a.Host
	case HTTP:
		return a.URL
	default:
		return string(a.Transport) + "://" + a.Path
	}
}

// IsGlob reports whether a unix address holds glob characters and stands for every socket
// that matches it.
func (a Address) IsGlob() bool {
	return a.Transport == Unix && strings.ContainsAny(a.Path, "*?[")
}

// Redacted is the address for labels, logs and errors: String, with the query values and
// the fragment of an http(s) URL hidden (fetch.Redact). The other forms cannot hold a secret:
// ParseAddress refuses a user or password in them.
func (a Address) Redacted() string {
	if a.Transport == HTTP {
		return fetch.Redact(a.URL)
	}
	return a.String()
}

// SourceName is the stats_uri label of the address given as s: s itself, with the query
// values of an http(s) URL hidden (fetch.Redact); an address that does not parse is shown
// as fetch.Redact shows it.
func SourceName(s string) string {
	a, err := ParseAddress(s)
	if err != nil || a.Transport == HTTP {
		return fetch.Redact(s)
	}
	return s
}

// ParseAddress parses a stats address: tcp://host:port, host:port (IP literals included:
// 127.0.0.1:1717, [::1]:1717), unix:///path (a glob is allowed), http://… or https://…,
// file:///path. A user or password is refused in every form; errors show the address with
// them and any query values hidden (fetch.Redact).
func ParseAddress(s string) (Address, error) {
	if s == "" {
		return Address{}, fmt.Errorf("empty stats address")
	}
	shown := fetch.Redact(s)
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		if strings.Contains(s, "@") {
			return Address{}, fmt.Errorf("stats address %q: a user or password is not supported (it would be exported in the stats_uri label)", shown)
		}
		if err := checkHostPort(s); err != nil {
			return Address{}, fmt.Errorf("stats address %q: %w (want tcp://host:port, host:port, unix:///path, http(s)://… or file:///path)", shown, err)
		}
		return Address{Transport: TCP, Host: s}, nil
	}
	switch strings.ToLower(scheme) {
	case "tcp":
		if strings.Contains(rest, "@") {
			return Address{}, fmt.Errorf("stats address %q: a user or password is not supported (it would be exported in the stats_uri label)", shown)
		}
		if err := checkHostPort(rest); err != nil {
			return Address{}, fmt.Errorf("stats address %q: %w", shown, err)
		}
		return Address{Transport: TCP, Host: rest}, nil
	case "unix", "file":
		if !strings.HasPrefix(rest, "/") {
			if auth, _, _ := strings.Cut(rest, "/"); strings.Contains(auth, "@") {
				return Address{}, fmt.Errorf("stats address %q: a user or password is not supported (it would be exported in the stats_uri label)", shown)
			}
			return Address{}, fmt.Errorf("stats address %q: the path must be absolute (%s:///path)", shown, scheme)
		}
		if strings.ContainsRune(rest, 0) {
			return Address{}, fmt.Errorf("stats address %q: NUL in path", shown)
		}
		t := Unix
		if strings.ToLower(scheme) == "file" {
			t = File
		}
		a := Address{Transport: t, Path: filepath.Clean(rest)}
		if a.IsGlob() {
			if _, err := filepath.Match(a.Path, ""); err != nil {
				return Address{}, fmt.Errorf("stats address %q: bad glob: %w", shown, err)
			}
		}
		return a, nil
	case "http", "https":
		u, err := url.Parse(s)
		if err != nil {
			return Address{}, fmt.Errorf("stats address %q: %w", shown, fetch.URLError(err))
		}
		if u.User != nil {
			return Address{}, fmt.Errorf("stats address %q: credentials in the URI are not supported (they would be exported in the stats_uri label)", shown)
		}
		if u.Host == "" {
			return Address{}, fmt.Errorf("stats address %q: no host", shown)
		}
		if u.Fragment != "" || strings.HasSuffix(s, "#") {
			return Address{}, fmt.Errorf("stats address %q: a fragment (#…) is never sent to the server", shown)
		}
		return Address{Transport: HTTP, URL: s}, nil
	}
	return Address{}, fmt.Errorf("stats address %q: unknown scheme %q (want tcp, unix, http, https or file)", shown, fetch.Redact(scheme))
}

// checkHostPort checks host:port. Its errors do not repeat s (the caller shows it redacted).
func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return errors.New(ae.Err)
		}
		return errors.New("not host:port")
	}
	if port == "" {
		return fmt.Errorf("no port")
	}
	if !validPort(port) {
		return fmt.Errorf("bad port: want a number or a service name")
	}
	if strings.ContainsAny(host, "/ ?#@\x00") {
		return fmt.Errorf("bad host: it holds one of '/', ' ', '?', '#', '@'")
	}
	return nil
}

// validPort accepts a port number or a service name (letters, digits and '-', starting with
// a letter), as net.Dial does.
func validPort(p string) bool {
	if n, err := strconv.Atoi(p); err == nil {
		return n >= 0 && n <= 65535 && p[0] != '+' && p[0] != '-'
	}
	for i, c := range p {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// Glob lists the unix sockets that a glob address matches now, sorted, as addresses. Matches
// that are not sockets are left out.
func Glob(a Address) ([]Address, error) {
	if a.Transport != Unix {
		return nil, fmt.Errorf("%s is not a unix socket address", a)
	}
	matches, err := filepath.Glob(a.Path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a, err)
	}
	out := make([]Address, 0, len(matches))
	for _, m := range matches {
		// Only sockets: a vassal directory also holds pid files, logs, configs.
		if fi, err := os.Stat(m); err != nil || fi.Mode()&os.ModeSocket == 0 {
			continue
		}
		out = append(out, Address{Transport: Unix, Path: m})
	}
	return out, nil
}
