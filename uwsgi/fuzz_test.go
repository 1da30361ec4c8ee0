package uwsgi

import (
	"bytes"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// FuzzDecode feeds arbitrary documents to Decode, seeded with every captured fixture and the
// edge documents. It must never panic; a failure is always a decode error; reading the
// document from a stream one byte at a time gives the same result; where encoding/json can
// tell (no key given twice in one object) both decoders agree on the error or the data; and
// with tiny limits the caps hold.
func FuzzDecode(f *testing.F) {
	files, err := filepath.Glob(filepath.Join(fixtures, "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no fixtures: %v", err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, d := range decodeEdgeDocs {
		f.Add([]byte(d))
	}
	f.Add([]byte(`{"workers":[{"id":0,"status":"sig"},{"id":0,"status":"cheap"}]}`))
	tiny := Limits{Workers: 2, Apps: 2, Cores: 2, Sockets: 1, Caches: 1, Spoolers: 1, Metrics: 1, Locks: 1,
		Daemons: 1, Crons: 1, StringBytes: 4, TotalStringBytes: 40}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkAgainstStdlib(t, b)
		st, err := Decode(b)
		if err != nil {
			if r := fetch.ReasonOf(err); r != fetch.ReasonDecode {
				t.Fatalf("reason %q for %v", r, err)
			}
			return
		}
		for _, w := range st.Workers {
			_ = StatusKind(w.Status)
		}
		_ = st.String()

		small, err := DecodeFrom(bytes.NewReader(b), int64(len(b)), tiny)
		if err != nil {
			t.Fatalf("the document decodes, but not with small limits: %v", err)
		}
		checkTiny(t, small, tiny)
	})
}

// checkTiny fails when st holds more than lim allows.
func checkTiny(t *testing.T, st *Stats, lim Limits) {
	apps, cores, locks := 0, 0, 0
	str := func(s string) {
		if len(s) > lim.StringBytes {
			t.Fatalf("string of %d bytes kept", len(s))
		}
	}
	str(st.Version)
	str(st.CWD)
	for _, w := range st.Workers {
		apps += len(w.Apps)
		cores += len(w.Cores)
		for _, a := range w.Apps {
			str(a.Mountpoint)
			str(a.Chdir)
		}
	}
	for _, l := range st.Locks {
		locks += 1 + len(l)
	}
	for n, m := range st.Metrics {
		str(n)
		str(m.OID)
	}
	if len(st.Workers) > lim.Workers || apps > lim.Apps || cores > lim.Cores || len(st.Sockets) > lim.Sockets ||
		len(st.Caches) > lim.Caches || len(st.Spoolers) > lim.Spoolers || len(st.Metrics) > lim.Metrics ||
		locks > lim.Locks || len(st.Daemons) > lim.Daemons || len(st.Crons) > lim.Crons {
		t.Fatalf("over the limits: %+v", st)
	}
}

// secretsOf returns what net/url reads in s as a user, a password or a query value, when it is
// at least 3 bytes long and appears in s once (so that finding it elsewhere means a leak).
func secretsOf(s string) []string {
	var out []string
	add := func(v string) {
		if len(v) >= 3 && strings.Count(s, v) == 1 {
			out = append(out, v)
		}
	}
	for _, c := range []string{s, "tcp://" + s} {
		u, err := url.Parse(c)
		if err != nil {
			continue
		}
		if u.User != nil {
			add(u.User.Username())
			if pw, ok := u.User.Password(); ok {
				add(pw)
			}
		}
		for _, p := range strings.Split(u.RawQuery, "&") {
			if _, v, ok := strings.Cut(p, "="); ok {
				add(v)
			}
		}
	}
	return out
}

// FuzzParseAddress: ParseAddress never panics; neither its error nor the stats_uri label shows
// a user, a password or a query value; the label of an address is an address of the same
// server.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{
		"tcp://127.0.0.1:1717", "127.0.0.1:1717", "[::1]:1717", "unix:///run/uwsgi/*.sock", "file:///tmp/s.json",
		"http://127.0.0.1:1717/?token=s3cr3t&v", "https://u:s3cr3t@h/", "tcp://u:s3cr3t@h:1", "u:s3cr3t@h:1",
		"unix://u:s3cr3t@/x", "http://h/#s3cr3t", "http://h/%zz?k=s3cr3t", "//u:s3cr3t@h",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		label := SourceName(s)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		for _, secret := range secretsOf(s) {
			if !strings.Contains(msg, secret) && !strings.Contains(label, secret) {
				continue
			}
			// The secret may be a word of the message's own text ("htt" in "http"): a leak is
			// when the text shows it only because the address holds it.
			other := strings.Replace(s, secret, filler(s, len(secret)), 1)
			_, err2 := ParseAddress(other)
			msg2 := ""
			if err2 != nil {
				msg2 = err2.Error()
			}
			if (strings.Contains(msg, secret) && !strings.Contains(msg2, secret)) ||
				(strings.Contains(label, secret) && !strings.Contains(SourceName(other), secret)) {
				t.Fatalf("%q: %q shows in the error %q or the label %q", s, secret, msg, label)
			}
		}
		if err != nil {
			return
		}
		b, err := ParseAddress(label)
		if err != nil || b.Transport != a.Transport || b.Host != a.Host || b.Path != a.Path {
			t.Fatalf("%q: label %q is not an address of the same server: %+v, %v", s, label, b, err)
		}
		_ = a.Redacted()
	})
}

// filler is n times a letter that s does not hold.
func filler(s string, n int) string {
	for _, c := range "ZQJXKVzqjxkv" {
		if !strings.ContainsRune(s, c) {
			return strings.Repeat(string(c), n)
		}
	}
	return strings.Repeat("W", n)
}
