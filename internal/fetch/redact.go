package fetch

import (
	"errors"
	"net/url"
	"strings"
)

// Addresses can hold secrets: a password in the userinfo (http://user:pw@host/), a token in
// the query (?token=…). Whatever names a source in a label, a log line, an error or the landing
// page goes through these functions first. The rule: a userinfo is shown as "xxxxx"; every
// query parameter keeps its name and loses its value ("?token=xxxxx&v=xxxxx"); a fragment is
// shown as "#xxxxx". Path and host are shown as given.

// Hidden replaces what is hidden.
const Hidden = "xxxxx"

// Redact returns the address s as written, with its userinfo, query values and fragment
// hidden. It does not parse s as a URL (s may be none, or an invalid one: this is what error
// messages about a bad address show): a userinfo is what comes before the last '@' of the
// authority (after "scheme://" or a leading "//", up to the first '/', '?' or '#'; else the
// whole string up to the first '/' when that part holds an '@').
func Redact(s string) string {
	rest, frag, hasFrag := strings.Cut(s, "#")
	rest, query, hasQuery := strings.Cut(rest, "?")
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(redactUserinfo(rest))
	if hasQuery {
		b.WriteByte('?')
		b.WriteString(RedactQuery(query))
	}
	if hasFrag && frag != "" {
		b.WriteString("#" + Hidden)
	} else if hasFrag {
		b.WriteByte('#')
	}
	return b.String()
}

func redactUserinfo(s string) string {
	prefix, auth := "", s
	if scheme, after, ok := strings.Cut(s, "://"); ok && isScheme(scheme) {
		prefix, auth = scheme+"://", after
	} else if after, ok := strings.CutPrefix(s, "//"); ok { // scheme-relative: //host/…
		prefix, auth = "//", after
	}
	end := strings.IndexByte(auth, '/')
	if end < 0 {
		end = len(auth)
	}
	at := strings.LastIndexByte(auth[:end], '@')
	if at < 0 {
		return s
	}
	return prefix + Hidden + auth[at:]
}

// isScheme reports whether s is a URL scheme: a letter, then letters, digits, '+', '-', '.'.
func isScheme(s string) bool {
	for i, c := range s {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}

// RedactQuery returns a raw query with the value of every parameter hidden: "a=1&b&c=" becomes
// "a=xxxxx&b&c=" (an empty value has nothing to hide).
func RedactQuery(raw string) string {
	if raw == "" {
		return raw
	}
	parts := strings.Split(raw, "&")
	for i, p := range parts {
		if k, v, ok := strings.Cut(p, "="); ok && v != "" {
			parts[i] = k + "=" + Hidden
		}
	}
	return strings.Join(parts, "&")
}

// RedactURL returns u as a string with its userinfo, query values and fragment hidden.
func RedactURL(u *url.URL) string {
	c := *u
	if c.User != nil {
		c.User = url.User(Hidden)
	}
	c.RawQuery = RedactQuery(c.RawQuery)
	if c.Fragment != "" {
		c.Fragment, c.RawFragment = Hidden, ""
	}
	return c.String()
}

// URLError describes an error of url.Parse or url.ParseQuery without the part of the address
// it quotes: an invalid escape may sit in a password or a query value. (The *url.Error of
// url.Parse also quotes the whole URL.)
func URLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var (
		ee url.EscapeError
		he url.InvalidHostError
	)
	switch {
	case errors.As(err, &ee):
		return errors.New("invalid %-escape")
	case errors.As(err, &he):
		return errors.New("invalid character in the host")
	}
	return err
}
