package nginx

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// Target is where a stub_status page is read: an http(s) URL, or a unix socket and the path
// of the request sent over it.
type Target struct {
	// URL is the request URL. For a unix socket its host is "unix" (nginx sees Host: unix
	// unless a Host header is configured) and its path is the request path.
	URL *url.URL
	// Socket is the unix socket path; empty for TCP targets.
	Socket string
}

// String is the canonical form of the target: two addresses that read the same page have
// the same String. It may hold a secret (a token in the query): show Redacted instead.
func (t Target) String() string {
	if t.Socket != "" {
		return (&url.URL{Scheme: "unix", Path: t.Socket, RawQuery: url.Values{"path": {t.URL.RequestURI()}}.Encode()}).String()
	}
	return t.URL.String()
}

// Redacted is String with the value of every query parameter of the request hidden
// (fetch.RedactQuery): for labels, logs and errors.
func (t Target) Redacted() string {
	if t.Socket != "" {
		reqURI := t.URL.EscapedPath()
		if t.URL.RawQuery != "" || t.URL.ForceQuery {
			reqURI += "?" + fetch.RedactQuery(t.URL.RawQuery)
		}
		return (&url.URL{Scheme: "unix", Path: t.Socket, RawQuery: url.Values{"path": {reqURI}}.Encode()}).String()
	}
	return fetch.RedactURL(t.URL)
}

// SourceName is the source label of the address given as s: s itself when its request has no
// query value to hide, else the target's Redacted form (for the unix:SOCKET:PATH and http(s)
// forms, s with its query values hidden, fetch.Redact).
func SourceName(s string) string {
	t, err := ParseAddress(s)
	if err != nil {
		return fetch.Redact(s)
	}
	if fetch.RedactQuery(t.URL.RawQuery) == t.URL.RawQuery {
		return s
	}
	switch {
	case strings.HasPrefix(s, "unix://"):
		return t.Redacted() // the request's query is inside path=…
	case strings.HasPrefix(s, "unix:"):
		// unix:SOCKET:PATH?QUERY ('#' and '?' in SOCKET are part of its name).
		socket, req, _ := strings.Cut(strings.TrimPrefix(s, "unix:"), ":")
		path, query, _ := strings.Cut(req, "?")
		return "unix:" + socket + ":" + path + "?" + fetch.RedactQuery(query)
	}
	return fetch.Redact(s)
}

// ParseAddress parses a --nginx.scrape-uri value. Accepted forms:
//
//	http://host:port/stub_status
//	https://host:port/stub_status
//	unix:/run/nginx/status.sock:/stub_status   (nginx-prometheus-exporter's form; the socket
//	                                            path cannot contain ':')
//	unix:///run/nginx/status.sock?path=/stub_status  (any socket path: ':' is plain, '%XX'
//	                                            escapes anything else; path defaults to /)
//
// Credentials in the URL are refused: they would end up in the source label and the process
// list. Use the basic auth flags instead.
func ParseAddress(s string) (Target, error) {
	shown := fetch.Redact(s) // errors never repeat a password or a query value
	switch {
	case strings.HasPrefix(s, "unix://"):
		return parseUnixURL(s, shown)
	case strings.HasPrefix(s, "unix:"):
		return parsePeerUnix(s, shown)
	case !strings.Contains(s, "://"):
		return Target{}, fmt.Errorf("%q has no scheme: want http://, https://, unix:/path.sock:/path or unix:///path.sock?path=/path", shown)
	}
	u, err := url.Parse(s)
	if err != nil {
		return Target{}, fmt.Errorf("%q is not a valid URL: %w", shown, fetch.URLError(err))
	}
	switch u.Scheme {
	case "http", "https":
	case "":
		return Target{}, fmt.Errorf("%q has no scheme: want http://, https://, unix:/path.sock:/path or unix:///path.sock?path=/path", shown)
	default:
		return Target{}, fmt.Errorf("%q: unsupported scheme %q (want http, https or unix)", shown, u.Scheme)
	}
	if u.User != nil {
		return Target{}, fmt.Errorf("%q carries credentials: use --nginx.basic-auth-user and --nginx.basic-auth-password-file instead", shown)
	}
	if u.Host == "" {
		return Target{}, fmt.Errorf("%q has no host", shown)
	}
	if u.Fragment != "" {
		return Target{}, fmt.Errorf("%q: a fragment (#…) is never sent to the server", shown)
	}
	if u.Path == "" {
		u.Path = "/"
	}
	return Target{URL: u}, nil
}

// parseUnixURL parses unix:///abs/path.sock?path=/request/path.
func parseUnixURL(s, shown string) (Target, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Target{}, fmt.Errorf("%q is not a valid unix:/// URL: %w", shown, fetch.URLError(err))
	}
	if u.Host != "" || u.User != nil {
		return Target{}, fmt.Errorf("%q: a unix URL has no host; write unix:///absolute/path.sock (three slashes)", shown)
	}
	if u.Fragment != "" {
		return Target{}, fmt.Errorf("%q: unexpected fragment (#…)", shown)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Target{}, fmt.Errorf("%q: bad query: %w", shown, fetch.URLError(err))
	}
	reqPath := "/"
	for k, v := range q {
		if k != "path" {
			return Target{}, fmt.Errorf("%q: unknown parameter %q (only path= is understood)", shown, k)
		}
		if len(v) != 1 {
			return Target{}, fmt.Errorf("%q: path= given %d times", shown, len(v))
		}
		reqPath = v[0]
	}
	return unixTarget(shown, u.Path, reqPath)
}

// parsePeerUnix parses nginx-prometheus-exporter's unix:/path.sock[:/request/path].
func parsePeerUnix(s, shown string) (Target, error) {
	rest := strings.TrimPrefix(s, "unix:")
	parts := strings.Split(rest, ":")
	reqPath := "/"
	switch len(parts) {
	case 1:
	case 2:
		reqPath = parts[1]
	default:
		return Target{}, fmt.Errorf("%q: in the unix:SOCKET:PATH form neither part may contain ':'; write unix:///socket/path?path=/request/path instead", shown)
	}
	return unixTarget(shown, parts[0], reqPath)
}

func unixTarget(shown, socket, reqPath string) (Target, error) {
	if socket == "" {
		return Target{}, fmt.Errorf("%q names no socket path", shown)
	}
	if strings.HasSuffix(socket, "/") {
		return Target{}, fmt.Errorf("%q: the socket path %q names a directory", shown, socket)
	}
	if strings.ContainsRune(socket, 0) {
		return Target{}, fmt.Errorf("%q: socket path contains a NUL byte", shown)
	}
	if !strings.HasPrefix(reqPath, "/") {
		return Target{}, fmt.Errorf("%q: the request path %q must start with /", shown, fetch.Redact(reqPath))
	}
	ref, err := url.Parse(reqPath)
	if err != nil || ref.Scheme != "" || ref.Host != "" || ref.Fragment != "" || strings.HasPrefix(reqPath, "//") {
		return Target{}, fmt.Errorf("%q: bad request path %q", shown, fetch.Redact(reqPath))
	}
	// A relative socket path is resolved now, as the dial would resolve it (the exporter never
	// changes directory), so that the canonical form is a unix:/// URL.
	abs, err := filepath.Abs(socket)
	if err != nil {
		return Target{}, fmt.Errorf("%q: %w", shown, err)
	}
	if abs == "/" { // "/." or "/a/..": the root directory, whatever the spelling
		return Target{}, fmt.Errorf("%q: the socket path %q names a directory", shown, socket)
	}
	return Target{
		URL:    &url.URL{Scheme: "http", Host: "unix", Path: ref.Path, RawPath: ref.RawPath, RawQuery: ref.RawQuery},
		Socket: abs,
	}, nil
}
