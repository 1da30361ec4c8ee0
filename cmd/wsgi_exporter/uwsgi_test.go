package main

import (
	"strings"
	"testing"

	"github.com/prometheus/common/promslog"
)

func buildUWSGI(t *testing.T, args ...string) error {
	t.Helper()
	app, s := newApp()
	if _, err := app.Parse(args); err != nil {
		t.Fatal(err)
	}
	for _, k := range s.kinds {
		if u, ok := k.(*uwsgiFlags); ok {
			_, err := u.build(common{Logger: promslog.NewNopLogger()})
			return err
		}
	}
	t.Fatal("no uwsgi flags")
	return nil
}

// Two spellings of one stats address are one server: a start-up error, not two series sets.
func TestUWSGISameAddressTwice(t *testing.T) {
	err := buildUWSGI(t, "--uwsgi.stats-uri=127.0.0.1:1717", "--uwsgi.stats-uri=tcp://127.0.0.1:1717")
	if err == nil || !strings.Contains(err.Error(), "same stats server") {
		t.Fatalf("err = %v", err)
	}
	if err := buildUWSGI(t, "--uwsgi.stats-uri=127.0.0.1:1717", "--uwsgi.stats-uri=127.0.0.1:1718"); err != nil {
		t.Fatalf("two servers: %v", err)
	}
}

// The TLS flags are read at start-up: a bad combination or file is a start-up error.
func TestUWSGITLSFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--uwsgi.ssl-client-cert=/x.pem"}, "needs both"},
		{[]string{"--uwsgi.ssl-ca-cert=/nonexistent/ca.pem"}, "reading the CA file"},
	} {
		args := append([]string{"--uwsgi.stats-uri=https://127.0.0.1:1717/"}, tc.args...)
		err := buildUWSGI(t, args...)
		if err == nil || !strings.Contains(err.Error(), "--uwsgi.ssl-* flags") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
	if err := buildUWSGI(t, "--uwsgi.stats-uri=https://127.0.0.1:1717/", "--no-uwsgi.ssl-verify"); err != nil {
		t.Fatalf("insecure switch: %v", err)
	}
}
