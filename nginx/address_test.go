package nginx

import (
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
		{"unix:relative.sock:/s", "http://unix/s", "relative.sock", "unix://relative.sock?path=%2Fs"},
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
