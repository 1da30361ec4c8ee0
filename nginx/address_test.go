package nginx

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseAddress(t *testing.T) {
	for _, tc := range []struct {
		in, url, socket, canon string
	}{
		{"http://127.0.0.1:8080/stub_status", "http://127.0.0.1:8080/stub_status", "", "http://127.0.0.1:8080/stub_status"},
		{"https://nginx.example:8443/basic_status?x=1", "https://nginx.example:8443/basic_status?x=1", "", "https://nginx.example:8443/basic_status?x=1"},
		{"http://[::1]:80", "http://[::1]:80/", "", "http://[::1]:80/"},
		// nginx-prometheus-exporter's form.
		{"unix:/run/nginx/status.sock:/stub_status", "http://unix/stub_status", "/run/nginx/status.sock", "unix:///run/nginx/status.sock?path=%2Fstub_status"},
		{"unix:/run/nginx/status.sock", "http://unix/", "/run/nginx/status.sock", "unix:///run/nginx/status.sock?path=%2F"},
		// Our URL form: ':' in the socket path, escapes, a query for nginx in path=.
		{"unix:///run/a:b/status.sock?path=/stub_status", "http://unix/stub_status", "/run/a:b/status.sock", "unix:///run/a:b/status.sock?path=%2Fstub_status"},
		{"unix:///run/a%3Fb%20c.sock?path=%2Fst%3Fx%3D1", "http://unix/st?x=1", "/run/a?b c.sock", "unix:///run/a%3Fb%20c.sock?path=%2Fst%3Fx%3D1"},
		{"unix:///run/nginx.sock", "http://unix/", "/run/nginx.sock", "unix:///run/nginx.sock?path=%2F"},
		{"unix:///run//x/../nginx.sock?path=/s", "http://unix/s", "/run/nginx.sock", "unix:///run/nginx.sock?path=%2Fs"},
	} {
		got, err := ParseAddress(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if got.URL.String() != tc.url || got.Socket != tc.socket || got.String() != tc.canon {
			t.Errorf("%s: url %q socket %q canon %q; want %q %q %q", tc.in, got.URL, got.Socket, got, tc.url, tc.socket, tc.canon)
		}
	}
}

func TestRelativeSocketIsResolved(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	a, err := ParseAddress("unix:relative.sock:/s")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(wd, "relative.sock"); a.Socket != want || a.String() != "unix://"+want+"?path=%2Fs" {
		t.Fatalf("socket %q canonical %q, want %q", a.Socket, a, want)
	}
}

func TestSameTargetSameCanonicalForm(t *testing.T) {
	a, err1 := ParseAddress("unix:/run/nginx.sock:/stub_status")
	b, err2 := ParseAddress("unix:///run/nginx.sock?path=/stub_status")
	if err1 != nil || err2 != nil || a.String() != b.String() {
		t.Fatalf("%v %v: %q != %q", err1, err2, a, b)
	}
}

func TestParseAddressRejects(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "no scheme"},
		{"127.0.0.1:8080/stub_status", "no scheme"},
		{"localhost/stub_status", "no scheme"},
		{"ftp://host/x", `unsupported scheme "ftp"`},
		{"http:///stub_status", "no host"},
		{"http://user:secret@host/x", "carries credentials"},
		{"http://host/x#frag", "fragment"},
		{"http://host:port/x", "not a valid URL"},
		{"unix:", "names no socket path"},
		{"unix:/a:b.sock:/stub_status", "neither part may contain ':'"},
		{"unix:/a.sock:stub_status", "must start with /"},
		{"unix:/a.sock://evil/x", "bad request path"},
		{"unix://host/a.sock", "has no host"},
		{"unix:///a.sock?path=/x&path=/y", "given 2 times"},
		{"unix:///a.sock?timeout=1", `unknown parameter "timeout"`},
		{"unix:///a.sock?path=x", "must start with /"},
		{"unix:///?path=/x", "names a directory"},
		{"unix:///a%00b.sock", "NUL"},
	} {
		_, err := ParseAddress(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.in, err, tc.want)
		}
	}
}

// FuzzParseAddress checks that no address crashes the parser and that the canonical form of
// an accepted one names the same target.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{
		"http://127.0.0.1:8080/stub_status", "https://[::1]:8443/s?x=1",
		"unix:/run/nginx.sock:/stub_status", "unix:/run/nginx.sock",
		"unix:///run/a:b.sock?path=/stub_status", "unix:///run/a%3Fb.sock?path=%2Fs%3Fx",
		"unix:/a:b:c", "http://u:p@h/", "unix:///?path=/", "unix://h/x",
	} {
		f.Add(s)
	}
	for _, s := range []string{
		"http://h/s?token=s3cr3t&auto", "http://u:s3cr3t@h/", "unix:/run/n.sock:/s?k=s3cr3t",
		"unix:///run/n.sock?path=/s%3Fk%3Ds3cr3t", "http://h/%zz?k=s3cr3t", "ftp://h/?k=s3cr3t",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		checkNoSecret(t, s, err)
		if err != nil {
			return
		}
		// The label names the same page, with no query value but "xxxxx".
		label := SourceName(s)
		l, err := ParseAddress(label)
		if err != nil || l.Socket != a.Socket || l.URL.Path != a.URL.Path || l.URL.Host != a.URL.Host {
			t.Fatalf("%q: label %q names another page: %+v, %v", s, label, l, err)
		}
		for _, vs := range l.URL.Query() {
			for _, v := range vs {
				if v != "" && v != "xxxxx" {
					t.Fatalf("%q: label %q shows the query value %q", s, label, v)
				}
			}
		}
		if a.URL == nil || (a.URL.Scheme != "http" && a.URL.Scheme != "https") {
			t.Fatalf("%q: bad request URL %v", s, a.URL)
		}
		if a.Socket == "" {
			return // an http(s) URL is its own canonical form
		}
		b, err := ParseAddress(a.String())
		if err != nil {
			t.Fatalf("%q: canonical form %q does not parse: %v", s, a, err)
		}
		if b.Socket != a.Socket || b.URL.String() != a.URL.String() || b.String() != a.String() {
			t.Fatalf("%q: canonical form %q names another target: %+v vs %+v", s, a, b, a)
		}
	})
}

// checkNoSecret fails when the error of ParseAddress(s) or the label of s shows what net/url
// reads in s as a user, a password or a query value (at least 3 bytes, once in s), unless the
// text shows it without s holding it (a word of the message's own).
func checkNoSecret(t *testing.T, s string, _ error) {
	t.Helper()
	msg := func(s string) string {
		if _, err := ParseAddress(s); err != nil {
			return err.Error()
		}
		return ""
	}
	shown := msg(s) + "\x00" + SourceName(s)
	for _, secret := range secretsOf(s) {
		if !strings.Contains(shown, secret) {
			continue
		}
		other := strings.Replace(s, secret, filler(s, len(secret)), 1)
		if !strings.Contains(msg(other)+"\x00"+SourceName(other), secret) {
			t.Fatalf("%q: %q shows in %q", s, secret, shown)
		}
	}
}

func secretsOf(s string) []string {
	var out []string
	add := func(v string) {
		if len(v) >= 3 && strings.Count(s, v) == 1 {
			out = append(out, v)
		}
	}
	values := func(rawQuery string) {
		for _, p := range strings.Split(rawQuery, "&") {
			if _, v, ok := strings.Cut(p, "="); ok {
				add(v)
			}
		}
	}
	if strings.HasPrefix(s, "unix:") {
		// The unix forms' query is the request's (a '?' before it is part of the socket path).
		if t, err := ParseAddress(s); err == nil {
			values(t.URL.RawQuery)
		} else if !strings.HasPrefix(s, "unix://") {
			// unix:SOCKET:PATH: the query is the request path's (a '?' in SOCKET is a name).
			if parts := strings.Split(strings.TrimPrefix(s, "unix:"), ":"); len(parts) == 2 {
				if _, q, ok := strings.Cut(parts[1], "?"); ok {
					values(q)
				}
			}
		} else if _, q, ok := strings.Cut(s, "?"); ok {
			// unix:///SOCKET?path=PATH: path= is the request path, shown: only its own query
			// is hidden.
			for _, p := range strings.Split(q, "&") {
				k, v, ok := strings.Cut(p, "=")
				if !ok {
					continue
				}
				if k != "path" || !strings.HasPrefix(s, "unix://") {
					add(v)
					continue
				}
				if dv, err := url.QueryUnescape(v); err == nil {
					if _, iq, ok := strings.Cut(dv, "?"); ok {
						values(iq)
					}
				}
			}
		}
		return out
	}
	if u, err := url.Parse(s); err == nil {
		if u.User != nil {
			add(u.User.Username())
			if pw, ok := u.User.Password(); ok {
				add(pw)
			}
		}
		values(u.RawQuery)
	}
	return out
}

func filler(s string, n int) string {
	for _, c := range "ZQJXKVzqjxkv" {
		if !strings.ContainsRune(s, c) {
			return strings.Repeat(string(c), n)
		}
	}
	return strings.Repeat("W", n)
}
