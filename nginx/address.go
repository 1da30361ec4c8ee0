package nginx

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
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
// the same String.
func (t Target) String() string {
	if t.Socket != "" {
		return (&url.URL{Scheme: "unix", Path: t.Socket, RawQuery: url.Values{"path": {t.URL.RequestURI()}}.Encode()}).String()
	}
	return t.URL.String()
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
	switch {
	case strings.HasPrefix(s, "unix://"):
		return parseUnixURL(s)
	case strings.HasPrefix(s, "unix:"):
		return parsePeerUnix(s)
	case !strings.Contains(s, "://"):
		return Target{}, fmt.Errorf("%q has no scheme: want http://, https://, unix:/path.sock:/path or unix:///path.sock?path=/path", s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return Target{}, fmt.Errorf("%q is not a valid URL: %w", s, err)
	}
	switch u.Scheme {
	case "http", "https":
	case "":
		return Target{}, fmt.Errorf("%q has no scheme: want http://, https://, unix:/path.sock:/path or unix:///path.sock?path=/path", s)
	default:
		return Target{}, fmt.Errorf("%q: unsupported scheme %q (want http, https or unix)", s, u.Scheme)
	}
	if u.Host == "" {
		return Target{}, fmt.Errorf("%q has no host", s)
	}
	if u.User != nil {
		return Target{}, fmt.Errorf("%q carries credentials: use --nginx.basic-auth-user and --nginx.basic-auth-password-file instead", u.Redacted())
	}
	if u.Fragment != "" {
		return Target{}, fmt.Errorf("%q: a fragment (#…) is never sent to the server", s)
	}
	if u.Path == "" {
		u.Path = "/"
	}
	return Target{URL: u}, nil
}

// parseUnixURL parses unix:///abs/path.sock?path=/request/path.
func parseUnixURL(s string) (Target, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Target{}, fmt.Errorf("%q is not a valid unix:/// URL: %w", s, err)
	}
	if u.Host != "" || u.User != nil {
		return Target{}, fmt.Errorf("%q: a unix URL has no host; write unix:///absolute/path.sock (three slashes)", s)
	}
	if u.Fragment != "" {
		return Target{}, fmt.Errorf("%q: unexpected fragment (#…)", s)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Target{}, fmt.Errorf("%q: bad query: %w", s, err)
	}
	reqPath := "/"
	for k, v := range q {
		if k != "path" {
			return Target{}, fmt.Errorf("%q: unknown parameter %q (only path= is understood)", s, k)
		}
		if len(v) != 1 {
			return Target{}, fmt.Errorf("%q: path= given %d times", s, len(v))
		}
		reqPath = v[0]
	}
	return unixTarget(s, u.Path, reqPath)
}

// parsePeerUnix parses nginx-prometheus-exporter's unix:/path.sock[:/request/path].
func parsePeerUnix(s string) (Target, error) {
	rest := strings.TrimPrefix(s, "unix:")
	parts := strings.Split(rest, ":")
	reqPath := "/"
	switch len(parts) {
	case 1:
	case 2:
		reqPath = parts[1]
	default:
		return Target{}, fmt.Errorf("%q: in the unix:SOCKET:PATH form neither part may contain ':'; write unix:///socket/path?path=/request/path instead", s)
	}
	return unixTarget(s, parts[0], reqPath)
}

func unixTarget(s, socket, reqPath string) (Target, error) {
	if socket == "" {
		return Target{}, fmt.Errorf("%q names no socket path", s)
	}
	if strings.HasSuffix(socket, "/") {
		return Target{}, fmt.Errorf("%q: the socket path %q names a directory", s, socket)
	}
	if strings.ContainsRune(socket, 0) {
		return Target{}, fmt.Errorf("%q: socket path contains a NUL byte", s)
	}
	if !strings.HasPrefix(reqPath, "/") {
		return Target{}, fmt.Errorf("%q: the request path %q must start with /", s, reqPath)
	}
	ref, err := url.Parse(reqPath)
	if err != nil || ref.Scheme != "" || ref.Host != "" || ref.Fragment != "" || strings.HasPrefix(reqPath, "//") {
		return Target{}, fmt.Errorf("%q: bad request path %q", s, reqPath)
	}
	// A relative socket path is resolved now, as the dial would resolve it (the exporter never
	// changes directory), so that the canonical form is a unix:/// URL.
	abs, err := filepath.Abs(socket)
	if err != nil {
		return Target{}, fmt.Errorf("%q: %w", s, err)
	}
	return Target{
		URL:    &url.URL{Scheme: "http", Host: "unix", Path: ref.Path, RawPath: ref.RawPath, RawQuery: ref.RawQuery},
		Socket: abs,
	}, nil
}
