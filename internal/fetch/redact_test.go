package fetch

import (
	"net/url"
	"testing"
)

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"http://h:1/p", "http://h:1/p"},
		{"http://u:pw@h:1/p?a=1&b&c=&d=2#frag", "http://xxxxx@h:1/p?a=xxxxx&b&c=&d=xxxxx#xxxxx"},
		{"http://u@h/", "http://xxxxx@h/"},
		{"http://h/p@q", "http://h/p@q"}, // '@' in the path is not a userinfo
		{"u:pw@h:1", "xxxxx@h:1"},        // no scheme
		{"unix:/run/a@b.sock:/s", "unix:/run/a@b.sock:/s"},
		{"u:pw@h://x", "xxxxx@h://x"},          // not a scheme before "://"
		{"tcp://a:b@c@h:1", "tcp://xxxxx@h:1"}, // the last '@' ends the userinfo
		{"http://h/?", "http://h/?"},
		{"http://h/#", "http://h/#"},
		{"//u:pw@h/x", "//xxxxx@h/x"}, // scheme-relative
		{"//@", "//xxxxx@"},
		{"", ""},
	} {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	u, _ := url.Parse("https://u:pw@h/x?token=1&v#f")
	if got, want := RedactURL(u), "https://xxxxx@h/x?token=xxxxx&v#xxxxx"; got != want {
		t.Errorf("RedactURL = %q, want %q", got, want)
	}
}
