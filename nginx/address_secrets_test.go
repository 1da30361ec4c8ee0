package nginx

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Secrets in a scrape URI never reach a label, a log line or an error: for each form, the
// exact source label or the exact error.
func TestAddressSecretsNeverShown(t *testing.T) {
	const creds = ` carries credentials: use --nginx.basic-auth-user and --nginx.basic-auth-password-file instead`
	sock := filepath.Join(t.TempDir(), "status.sock")
	for _, tc := range []struct{ in, label, err string }{
		// http
		{"http://127.0.0.1:8080/stub_status", "http://127.0.0.1:8080/stub_status", ""},
		{"http://127.0.0.1:8080/stub_status?token=s3cr3t&auto", "http://127.0.0.1:8080/stub_status?token=xxxxx&auto", ""},
		{"http://admin:s3cr3t@127.0.0.1:8080/stub_status", "", `"http://xxxxx@127.0.0.1:8080/stub_status"` + creds},
		{"http://127.0.0.1:8080/stub_status#s3cr3t", "", `"http://127.0.0.1:8080/stub_status#xxxxx": a fragment (#…) is never sent to the server`},
		{"http://127.0.0.1:8080/%zz?token=s3cr3t", "", `"http://127.0.0.1:8080/%zz?token=xxxxx" is not a valid URL: invalid %-escape`},
		{"ftp://127.0.0.1/?key=s3cr3t", "", `"ftp://127.0.0.1/?key=xxxxx": unsupported scheme "ftp" (want http, https or unix)`},
		// https
		{"https://status.example/stub_status?access_token=s3cr3t", "https://status.example/stub_status?access_token=xxxxx", ""},
		{"https://s3cr3t@status.example/stub_status", "", `"https://xxxxx@status.example/stub_status"` + creds},
		// unix, nginx-prometheus-exporter's form: the query belongs to the request path
		{"unix:" + sock + ":/stub_status", "unix:" + sock + ":/stub_status", ""},
		{"unix:" + sock + ":/stub_status?token=s3cr3t", "unix:" + sock + ":/stub_status?token=xxxxx", ""},
		{"unix:" + sock + ":stub?token=s3cr3t", "", `"unix:` + sock + `:stub?token=xxxxx": the request path "stub?token=xxxxx" must start with /`},
		// unix:/// form: the request path, its query included, is the path= parameter
		{"unix://" + sock + "?path=/stub_status", "unix://" + sock + "?path=/stub_status", ""},
		{"unix://" + sock + "?path=/stub_status%3Ftoken%3Ds3cr3t", "unix://" + sock + "?path=%2Fstub_status%3Ftoken%3Dxxxxx", ""},
		{"unix://u:s3cr3t@/x.sock", "", `"unix://xxxxx@/x.sock": a unix URL has no host; write unix:///absolute/path.sock (three slashes)`},
	} {
		_, err := ParseAddress(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("ParseAddress(%q): error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseAddress(%q): %v", tc.in, err)
			continue
		}
		if got := SourceName(tc.in); got != tc.label {
			t.Errorf("SourceName(%q) = %q, want %q", tc.in, got, tc.label)
		}
	}
}

// The errors of a scrape name the page with its query values hidden.
func TestFetchErrorsHideQuery(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	silent := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer silent.Close()
	denied := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no", http.StatusForbidden)
	}))
	defer denied.Close()
	for _, tc := range []struct{ uri, want string }{
		{"http://" + dead + "/stub_status?token=s3cr3t", fmt.Sprintf("connecting to http://%s/stub_status?token=xxxxx: dial tcp %s: connect: connection refused", dead, dead)},
		{silent.URL + "/stub_status?token=s3cr3t", "no answer from " + silent.URL + "/stub_status?token=xxxxx: context deadline exceeded"},
		{denied.URL + "/stub_status?token=s3cr3t", "nginx answered 403 Forbidden, want 200 OK"},
	} {
		tgt, err := ParseAddress(tc.uri)
		if err != nil {
			t.Fatal(err)
		}
		c := NewClient(tgt, Options{})
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err = c.Fetch(ctx)
		cancel()
		c.Close()
		if err == nil || err.Error() != tc.want || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%s: error %v, want %q", tc.uri, err, tc.want)
		}
	}
}
