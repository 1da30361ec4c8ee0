package main

import (
	"strings"
	"testing"
)

func buildUWSGI(t *testing.T, args ...string) error {
	t.Helper()
	app, s := newApp()
	if _, err := app.Parse(args); err != nil {
		t.Fatal(err)
	}
	for _, k := range s.kinds {
		if u, ok := k.(*uwsgiFlags); ok {
			_, err := u.build(common{})
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
