package redisstore

import (
	"strings"

	"github.com/wsgi-exporter/wsgi_exporter/multiproc"
)

// gunicorn-prometheus-exporter (every release since v0.1.5, up to v0.2.4 at least) keeps
// one Redis hash per worker process and sample:
//
//	PREFIX:TYPE:PID:metric:HASH    fields value, timestamp, updated_at
//	PREFIX:TYPE:PID:meta:HASH      fields original_key, created_at, and (when the
//	                               metric was created in that process) typ, multiprocess_mode
//
// TYPE is counter, histogram, summary, or gauge_MODE for gauges (gauge_all, gauge_livesum…).
// HASH is a digest of the sample's identity, which versions have computed differently; the
// identity itself is the metadata's original_key, the JSON key prometheus_client writes in
// its .db files. Values are Python floats as text (repr).

// Fields read from the hashes.
const (
	fieldValue     = "value"
	fieldTimestamp = "timestamp"
	fieldKey       = "original_key"
	fieldMode      = "multiprocess_mode"
)

// DefaultPrefix is the key prefix the writer uses unless REDIS_KEY_PREFIX says otherwise.
const DefaultPrefix = "gunicorn"

// Name is what a metric key's name says.
type Name struct {
	Type string // counter, gauge, histogram, summary
	Mode string // gauges: all, liveall, min, livesum…; "" for a bare gauge (see ReasonNoMode)
	PID  string // the writing process
	Meta string // the name of the metadata hash
}

// ParseName reads a metric key name written under prefix. The reason is set when the name
// is not one: ReasonForeignPrefix for the keys of another prefix that the scan pattern also
// matches (the prefix "gunicorn" and an application writing under "gunicorn:app2"),
// ReasonBadName otherwise.
func ParseName(prefix, name string) (n Name, reason string) {
	// From the right: HASH, "metric", PID and TYPE hold no ':', the prefix may.
	rest, hash, ok := cutLast(name)
	if !ok || hash == "" {
		return n, ReasonBadName
	}
	rest, kind, ok := cutLast(rest)
	if !ok || kind != "metric" {
		return n, ReasonBadName
	}
	rest, pid, ok := cutLast(rest)
	if !ok {
		return n, ReasonBadName
	}
	pfx, typ, ok := cutLast(rest)
	if !ok {
		return n, ReasonBadName
	}
	if pfx != prefix {
		return n, ReasonForeignPrefix
	}
	if !isPID(pid) {
		return n, ReasonBadName
	}
	switch typ {
	case multiproc.TypeCounter, multiproc.TypeHistogram, multiproc.TypeSummary, multiproc.TypeGauge:
		n.Type = typ
	default:
		mode, found := strings.CutPrefix(typ, multiproc.TypeGauge+"_")
		if !found || !isMode(mode) {
			return n, ReasonBadName
		}
		n.Type, n.Mode = multiproc.TypeGauge, mode
	}
	n.PID = pid
	n.Meta = pfx + ":" + typ + ":" + pid + ":meta:" + hash
	return n, ""
}

func cutLast(s string) (before, after string, ok bool) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}

// isPID accepts what os.getpid() formats: a positive decimal number.
func isPID(s string) bool {
	if s == "" || len(s) > 10 || s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isMode accepts a lower-case word: prometheus_client's modes, and any other (its merge
// treats unknown modes as all, and so does ours).
func isMode(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return true
}

// ScanPattern is the SCAN MATCH pattern of the metric keys under prefix, with the glob's
// special characters of the prefix escaped.
func ScanPattern(prefix string) string {
	var b strings.Builder
	for i := 0; i < len(prefix); i++ {
		switch c := prefix[i]; c {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteString(":*:*:metric:*")
	return b.String()
}

// CleanPrefix is the prefix as the writer uses it: without trailing colons (its storage
// manager strips them).
func CleanPrefix(p string) string {
	return strings.TrimRight(p, ":")
}
