package main

import (
	"strings"
	"testing"
)

// TestFlagErrorNamesFlag: kingpin's error for a value that does not parse says nothing of
// the flag; flagError adds it, or the environment variable the value came from.
func TestFlagErrorNamesFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--scrape.timeout=5x"}, nil, `--scrape.timeout: time: unknown unit "x" in duration "5x"`},
		{[]string{"--scrape.timeout=1s", "--uwsgi.max-response-size=3 apples"}, nil, "--uwsgi.max-response-size: "},
		{[]string{"--multiproc.dir-label=x"}, nil, "--multiproc.dir-label: enum value must be one of auto,always,never, got 'x'"},
		{nil, map[string]string{"WSGI_EXPORTER_SCRAPE_MAX_TIMEOUT": "soon"}, `WSGI_EXPORTER_SCRAPE_MAX_TIMEOUT (--scrape.max-timeout): time: invalid duration "soon"`},
		{[]string{"--no-such-flag"}, nil, "unknown long flag '--no-such-flag'"},
	} {
		t.Run(c.want, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			app, _ := newApp()
			_, err := app.Parse(c.args)
			if err == nil {
				t.Fatalf("%v %v: no error", c.args, c.env)
			}
			if got := flagError(app, c.args, err).Error(); !strings.HasPrefix(got, c.want) {
				t.Errorf("%v %v: %q, want it to start with %q", c.args, c.env, got, c.want)
			}
		})
	}
}
