package uwsgi

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Secrets in a stats address (a password, a token in the query) never reach a label, a log
// line or an error: for each form, the exact stats_uri label or the exact error.
func TestAddressSecretsNeverShown(t *testing.T) {
	const (
		userinfo = ": a user or password is not supported (it would be exported in the stats_uri label)"
		creds    = ": credentials in the URI are not supported (they would be exported in the stats_uri label)"
	)
	for _, tc := range []struct{ in, label, err string }{
		// http
		{"http://127.0.0.1:1717/", "http://127.0.0.1:1717/", ""},
		{"http://127.0.0.1:1717/stats?token=s3cr3t&v=2&debug&x=", "http://127.0.0.1:1717/stats?token=xxxxx&v=xxxxx&debug&x=", ""},
		{"http://admin:s3cr3t@127.0.0.1:1717/", "", `stats address "http://xxxxx@127.0.0.1:1717/"` + creds},
		{"http://s3cr3t@127.0.0.1:1717/?token=s3cr3t", "", `stats address "http://xxxxx@127.0.0.1:1717/?token=xxxxx"` + creds},
		{"http://127.0.0.1:1717/#s3cr3t", "", `stats address "http://127.0.0.1:1717/#xxxxx": a fragment (#…) is never sent to the server`},
		{"http://127.0.0.1:1717/%zz?token=s3cr3t", "", `stats address "http://127.0.0.1:1717/%zz?token=xxxxx": invalid %-escape`},
		// https
		{"https://stats.example:9191/?api_key=s3cr3t", "https://stats.example:9191/?api_key=xxxxx", ""},
		{"HTTPS://stats.example:9191/x?sig=s3cr3t", "HTTPS://stats.example:9191/x?sig=xxxxx", ""},
		{"https://u:s3cr3t@stats.example/", "", `stats address "https://xxxxx@stats.example/"` + creds},
		// tcp
		{"tcp://127.0.0.1:1717", "tcp://127.0.0.1:1717", ""},
		{"127.0.0.1:1717", "127.0.0.1:1717", ""},
		{"tcp://user:s3cr3t@127.0.0.1:1717", "", `stats address "tcp://xxxxx@127.0.0.1:1717"` + userinfo},
		{"user:s3cr3t@127.0.0.1:1717", "", `stats address "xxxxx@127.0.0.1:1717"` + userinfo},
		{"s3cr3t://x", "", `stats address "s3cr3t://x": unknown scheme "s3cr3t" (want tcp, unix, http, https or file)`},
		{"u:s3cr3t@h://x", "", `stats address "xxxxx@h://x": unknown scheme "xxxxx@h" (want tcp, unix, http, https or file)`},
		// unix
		{"unix:///run/uwsgi/app.sock", "unix:///run/uwsgi/app.sock", ""},
		{"unix://user:s3cr3t@/run/uwsgi/app.sock", "", `stats address "unix://xxxxx@/run/uwsgi/app.sock"` + userinfo},
		// file
		{"file:///var/tmp/stats.json", "file:///var/tmp/stats.json", ""},
		{"file://user:s3cr3t@/var/tmp/stats.json", "", `stats address "file://xxxxx@/var/tmp/stats.json"` + userinfo},
	} {
		_, err := ParseAddress(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("ParseAddress(%q): error %v, want %q", tc.in, err, tc.err)
			}
		} else if err != nil {
			t.Errorf("ParseAddress(%q): %v", tc.in, err)
		} else if got := SourceName(tc.in); got != tc.label {
			t.Errorf("SourceName(%q) = %q, want %q", tc.in, got, tc.label)
		}
		if tc.err == "" && strings.Contains(SourceName(tc.in), "s3cr3t") {
			t.Errorf("SourceName(%q) = %q shows the secret", tc.in, SourceName(tc.in))
		}
	}
}

// The errors of a scrape name an http(s) address with its query values hidden: a refused
// connection, an answer other than 200, a timeout.
func TestHTTPErrorsHideQuery(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}))
	defer busy.Close()
	silent := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer silent.Close()
	for _, tc := range []struct{ uri, want string }{
		{"http://" + dead + "/s?token=s3cr3t", fmt.Sprintf("connecting to http://%s/s?token=xxxxx: dial tcp %s: connect: connection refused", dead, dead)},
		{busy.URL + "/?token=s3cr3t", "the stats server " + busy.URL + "/?token=xxxxx answered 503 Service Unavailable, want 200 OK"},
		{silent.URL + "/?token=s3cr3t", "no answer from " + silent.URL + "/?token=xxxxx: context deadline exceeded"},
	} {
		_, err := fetchReason(t, tc.uri, 0, 300*time.Millisecond)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: error %v, want %q", tc.uri, err, tc.want)
		}
	}
}
