package uwsgi

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
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

// ParseAddress parses a stats address: tcp://host:port, host:port (IP literals included:
// 127.0.0.1:1717, [::1]:1717), unix:///path (a glob is allowed), http://… or https://…,
// file:///path.
func ParseAddress(s string) (Address, error) {
	if s == "" {
		return Address{}, fmt.Errorf("empty stats address")
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		if err := checkHostPort(s); err != nil {
			return Address{}, fmt.Errorf("stats address %q: %w (want tcp://host:port, host:port, unix:///path, http(s)://… or file:///path)", s, err)
		}
		return Address{Transport: TCP, Host: s}, nil
	}
	switch strings.ToLower(scheme) {
	case "tcp":
		if err := checkHostPort(rest); err != nil {
			return Address{}, fmt.Errorf("stats address %q: %w", s, err)
		}
		return Address{Transport: TCP, Host: rest}, nil
	case "unix", "file":
		if !strings.HasPrefix(rest, "/") {
			return Address{}, fmt.Errorf("stats address %q: the path must be absolute (%s:///path)", s, scheme)
		}
		if strings.ContainsRune(rest, 0) {
			return Address{}, fmt.Errorf("stats address %q: NUL in path", s)
		}
		t := Unix
		if strings.ToLower(scheme) == "file" {
			t = File
		}
		a := Address{Transport: t, Path: filepath.Clean(rest)}
		if a.IsGlob() {
			if _, err := filepath.Match(a.Path, ""); err != nil {
				return Address{}, fmt.Errorf("stats address %q: bad glob: %w", s, err)
			}
		}
		return a, nil
	case "http", "https":
		u, err := url.Parse(s)
		if err != nil {
			return Address{}, fmt.Errorf("stats address %q: %w", s, err)
		}
		if u.User != nil {
			// The address is the stats_uri label and appears in logs and on the landing page.
			return Address{}, fmt.Errorf("stats address %q: credentials in the URI are not supported (they would be exported in the stats_uri label)", u.Redacted())
		}
		if u.Host == "" {
			return Address{}, fmt.Errorf("stats address %q: no host", s)
		}
		return Address{Transport: HTTP, URL: s}, nil
	}
	return Address{}, fmt.Errorf("stats address %q: unknown scheme %q (want tcp, unix, http, https or file)", s, scheme)
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if port == "" {
		return fmt.Errorf("no port")
	}
	if strings.ContainsAny(host, "/ ") {
		return fmt.Errorf("bad host %q", host)
	}
	return nil
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
