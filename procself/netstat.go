package procself

import (
	"bytes"
	"fmt"
	"strconv"
)

// maxNetstatBytes bounds the read of /proc/self/net/netstat (about 4 KB today).
const maxNetstatBytes = 256 << 10

// Netstat holds the counters of /proc/self/net/netstat the process metrics use: the IP
// octets received and sent in the process's network namespace. A counter the kernel does not
// list is 0, as client_golang shows it.
type Netstat struct {
	InOctets, OutOctets float64
}

// Netstat reads /proc/self/net/netstat.
func (r *Reader) Netstat() (Netstat, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, err := r.readFile(r.netstatPath, maxNetstatBytes)
	if err != nil {
		return Netstat{}, err
	}
	ns, err := parseNetstat(b)
	if err != nil {
		return Netstat{}, fmt.Errorf("%s: %w", r.netstatPath, err)
	}
	return ns, nil
}

// parseNetstat finds the IpExt pair of lines (names, then values) and takes InOctets and
// OutOctets from it.
func parseNetstat(b []byte) (Netstat, error) {
	var ns Netstat
	for len(b) > 0 {
		var names, values []byte
		names, b = cutLine(b)
		values, b = cutLine(b)
		proto, rest, ok := bytes.Cut(names, []byte(": "))
		if !ok || string(proto) != "IpExt" {
			continue
		}
		vproto, vrest, ok := bytes.Cut(values, []byte(": "))
		if !ok || !bytes.Equal(vproto, proto) {
			return Netstat{}, fmt.Errorf("IpExt: names without values")
		}
		if bytes.Count(rest, []byte(" ")) != bytes.Count(vrest, []byte(" ")) {
			return Netstat{}, fmt.Errorf("IpExt: %d names for %d values", bytes.Count(rest, []byte(" "))+1, bytes.Count(vrest, []byte(" "))+1)
		}
		for len(rest) > 0 {
			var name, value []byte
			name, rest, _ = bytes.Cut(rest, []byte(" "))
			value, vrest, _ = bytes.Cut(vrest, []byte(" "))
			var dst *float64
			switch string(name) {
			case "InOctets":
				dst = &ns.InOctets
			case "OutOctets":
				dst = &ns.OutOctets
			default:
				continue
			}
			v, err := strconv.ParseFloat(string(value), 64)
			if err != nil {
				return Netstat{}, fmt.Errorf("IpExt %s: %w", name, err)
			}
			*dst = v
		}
		return ns, nil
	}
	return ns, nil
}

func cutLine(b []byte) (line, rest []byte) {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i], b[i+1:]
	}
	return b, nil
}
