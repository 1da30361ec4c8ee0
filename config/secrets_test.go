package config

import (
	"strings"
	"testing"
)

// A source's default name is its address with query values hidden (issue 10 point 6): the
// errors that name it never show the token.
func TestSourceNameHidesQueryValues(t *testing.T) {
	doc := `sources:
  - kind: uwsgi
    address: http://127.0.0.1:1717/?token=s3cr3t
  - kind: uwsgi
    address: http://127.0.0.1:1717/?token=other
  - kind: nginx
    address: http://127.0.0.1:8080/stub_status?key=s3cr3t
`
	f, err := Parse([]byte(doc), "s.yml")
	if err == nil {
		t.Fatalf("two sources under one name accepted: %+v", f)
	}
	want := `a uwsgi source named "http://127.0.0.1:1717/?token=xxxxx" is already configured at s.yml:2`
	if !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "other") {
		t.Fatalf("error %q, want it to say %q and no token", err, want)
	}
	for _, tc := range []struct{ kind, addr, want string }{
		{KindUWSGI, "https://h:1/x?sig=s3cr3t&v", "https://h:1/x?sig=xxxxx&v"},
		{KindNginx, "http://h:1/stub_status?key=s3cr3t", "http://h:1/stub_status?key=xxxxx"},
		{KindUWSGI, "tcp://127.0.0.1:1717", "tcp://127.0.0.1:1717"},
	} {
		if got := (&Source{Kind: tc.kind, Address: tc.addr}).SourceName(); got != tc.want {
			t.Errorf("%s %s: SourceName %q, want %q", tc.kind, tc.addr, got, tc.want)
		}
	}
}
