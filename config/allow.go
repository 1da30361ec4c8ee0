package config

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// AllowList is what the targets of a module may be. A target passes when one rule of its
// type matches it; a module with no rule for a type of target refuses every target of
// that type (file:// included).
//
// Network targets (host:port, http(s):// URLs) are matched by addresses. An entry is a CIDR
// or an IP address (10.0.0.0/8, fd00::/8, 127.0.0.1), a host name pattern
// (*.pods.example.com, where * stands for one or more characters of one label), either of
// them with a port or * for any port (10.0.0.0/8:1717, [fd00::/8]:9191,
// web-*.example.com:443); without a port any port matches. Host names are matched as names
// and never resolved: an IP address matches only CIDR and IP entries, a name only name
// patterns (resolving the name to check its addresses, and again to connect, would let a DNS
// answer that changes in between reach any address).
//
// Unix sockets, multiprocess directories, pidfiles and saved stats documents are matched by
// directory: the target must lie below (or be) a listed directory both as written (after
// removing . and .. lexically) and once every symlink in it is resolved, against the listed
// directory also resolved. The resolved path is what is read.
type AllowList struct {
	Addresses   []string `yaml:"addresses"`    // network targets (uwsgi tcp and http(s), nginx http(s), redis)
	UnixSockets []string `yaml:"unix_sockets"` // directories of unix sockets (uwsgi, nginx, redis)
	Paths       []string `yaml:"paths"`        // directories of multiprocess directories and pidfiles
	Files       []string `yaml:"files"`        // directories of saved uWSGI stats documents (file://)

	addrs []addrRule
}

// addrRule is one compiled entry of addresses.
type addrRule struct {
	prefix  netip.Prefix // valid for an IP rule
	pattern []string     // labels of a name pattern, lowercase; nil for an IP rule
	port    int          // 0: any
}

// Refusal reasons: label values of wsgi_exporter_probe_refused_total.
const (
	RefusedAddress = "address" // a network target that no addresses entry matches
	RefusedPath    = "path"    // a path below none of the listed directories
	RefusedSymlink = "symlink" // a path below a listed directory that resolves outside them
	RefusedScheme  = "scheme"  // a type of target the module lists nothing for (file://, unix sockets, ...)
)

// RefusedError is a target the allow-list refuses (answered 403).
type RefusedError struct {
	Reason string // one of the Refused* constants
	Msg    string
}

func (e *RefusedError) Error() string { return e.Msg }

func refused(reason, format string, args ...any) error {
	return &RefusedError{Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// TargetError is a target that is not a valid address of the module's kind (answered 400).
type TargetError struct{ Msg string }

func (e *TargetError) Error() string { return e.Msg }

func badTarget(format string, args ...any) error {
	return &TargetError{Msg: fmt.Sprintf(format, args...)}
}

// compile parses the entries and checks that the module's kind can use them.
func (a *AllowList) compile(kind string) error {
	a.addrs = nil
	for _, e := range a.Addresses {
		r, err := parseAddrRule(e)
		if err != nil {
			return fmt.Errorf("addresses: %w", err)
		}
		a.addrs = append(a.addrs, r)
	}
	lists := []struct {
		name  string
		dirs  []string
		kinds []string
	}{
		{"addresses", a.Addresses, []string{KindUWSGI, KindNginx, KindMultiprocRedis}},
		{"unix_sockets", a.UnixSockets, []string{KindUWSGI, KindNginx, KindMultiprocRedis}},
		{"paths", a.Paths, []string{KindMultiproc, KindGunicorn}},
		{"files", a.Files, []string{KindUWSGI}},
	}
	listed := false
	for _, l := range lists {
		if len(l.dirs) == 0 {
			continue
		}
		listed = true
		if !slices.Contains(l.kinds, kind) {
			return fmt.Errorf("%s does not apply to a %s module (it does to %s)", l.name, kind, strings.Join(l.kinds, ", "))
		}
		if l.name == "addresses" {
			continue
		}
		for i, d := range l.dirs {
			if !filepath.IsAbs(d) || strings.ContainsRune(d, 0) {
				return fmt.Errorf("%s: %q is not an absolute directory path", l.name, d)
			}
			l.dirs[i] = filepath.Clean(d)
		}
	}
	if !listed {
		return fmt.Errorf("lists nothing: every target would be refused")
	}
	return nil
}

// parseAddrRule parses one addresses entry.
func parseAddrRule(e string) (addrRule, error) {
	if e == "" {
		return addrRule{}, fmt.Errorf("empty entry")
	}
	if r, ok := parseIPRule(e); ok {
		return r, nil
	}
	host, port := e, "*"
	if h, p, err := net.SplitHostPort(e); err == nil {
		host, port = h, p
	} else if strings.Contains(e, ":") && !strings.Contains(e, "/") {
		// host:port that SplitHostPort refuses, or a bad IPv6 literal
		return addrRule{}, fmt.Errorf("%q: want an IP, CIDR or host name pattern, optionally with :port or :* ([...] around IPv6)", e)
	}
	r, ok := parseIPRule(host)
	if !ok {
		labels, err := parseNamePattern(host)
		if err != nil {
			return addrRule{}, fmt.Errorf("%q: %w", e, err)
		}
		r = addrRule{pattern: labels}
	}
	if port != "*" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return addrRule{}, fmt.Errorf("%q: the port must be 1 to 65535 or *", e)
		}
		r.port = n
	}
	return r, nil
}

// parseIPRule parses a CIDR or an IP address (any port).
func parseIPRule(s string) (addrRule, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		p = p.Masked()
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		return addrRule{prefix: p}, true
	}
	if ip, err := netip.ParseAddr(s); err == nil && ip.Zone() == "" {
		ip = ip.Unmap()
		return addrRule{prefix: netip.PrefixFrom(ip, ip.BitLen())}, true
	}
	return addrRule{}, false
}

// parseNamePattern checks a host name pattern: labels of letters, digits, '-' and '_', where
// '*' stands for one or more of those characters.
func parseNamePattern(s string) ([]string, error) {
	s = strings.TrimSuffix(strings.ToLower(s), ".")
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return nil, fmt.Errorf("not an IP, a CIDR or a host name pattern")
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '*') {
				return nil, fmt.Errorf("not an IP, a CIDR or a host name pattern")
			}
		}
	}
	if isNumeric(labels[len(labels)-1]) {
		return nil, fmt.Errorf("not an IP, a CIDR or a host name pattern (a name's last label is never all digits)")
	}
	return labels, nil
}

// hostName checks a target's host name and returns its labels, lowercase. A last label of
// digits only is refused: resolvers read such names (127.1, 2130706433) as IPv4 addresses.
func hostName(s string) ([]string, error) {
	s = strings.TrimSuffix(strings.ToLower(s), ".")
	if s == "" || len(s) > 253 {
		return nil, fmt.Errorf("not a host name")
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return nil, fmt.Errorf("not a host name")
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return nil, fmt.Errorf("not a host name")
			}
		}
	}
	if isNumeric(labels[len(labels)-1]) || strings.HasPrefix(labels[len(labels)-1], "0x") {
		return nil, fmt.Errorf("neither an IP address nor a host name")
	}
	return labels, nil
}

func isNumeric(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// matchLabel matches one label against a pattern label, where * is one or more characters.
func matchLabel(pattern, label string) bool {
	star := strings.IndexByte(pattern, '*')
	if star < 0 {
		return pattern == label
	}
	head, rest := pattern[:star], pattern[star+1:]
	if !strings.HasPrefix(label, head) {
		return false
	}
	label = label[len(head):]
	// * takes one or more characters; try every split for the rest (patterns are short).
	for i := 1; i <= len(label); i++ {
		if matchLabel(rest, label[i:]) {
			return true
		}
	}
	return false
}

// allowsHostPort matches a network target.
func (a *AllowList) allowsHostPort(host string, port int) error {
	if len(a.addrs) == 0 {
		return refused(RefusedScheme, "the module allows no network target")
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return refused(RefusedAddress, "an IPv6 address with a zone is never allowed")
		}
		ip = ip.Unmap()
		for _, r := range a.addrs {
			if r.pattern == nil && r.prefix.Contains(ip) && (r.port == 0 || r.port == port) {
				return nil
			}
		}
		return refused(RefusedAddress, "%s port %d is not in the module's addresses", ip, port)
	}
	labels, err := hostName(host)
	if err != nil {
		return badTarget("host %q: %v", host, err)
	}
	for _, r := range a.addrs {
		if r.pattern == nil || len(r.pattern) != len(labels) || (r.port != 0 && r.port != port) {
			continue
		}
		ok := true
		for i := range labels {
			if !matchLabel(r.pattern[i], labels[i]) {
				ok = false
				break
			}
		}
		if ok {
			return nil
		}
	}
	return refused(RefusedAddress, "%s port %d is not in the module's addresses", strings.Join(labels, "."), port)
}
