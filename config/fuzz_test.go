package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgi-exporter/wsgi_exporter/nginx"
	"github.com/wsgi-exporter/wsgi_exporter/uwsgi"
)

// seeds are the configuration files of the repository's examples and a few edge cases.
func seeds(f *testing.F) {
	paths, _ := filepath.Glob("../examples/probe/*.yml")
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		"sources:\n  - {kind: uwsgi, address: \"127.0.0.1:1717\", labels: {a: b}}\n",
		"modules:\n  u: {kind: uwsgi, allow: {addresses: [\"10.0.0.0/8:1717\", \"*.x.y\"], unix_sockets: [/run]}}\n",
		"a: &a {b: *a}\n",
		"sources: [&x {kind: nginx, address: \"http://a/\"}, *x]\n",
		"global: {<<: {timeout: 1s}}\n",
	} {
		f.Add([]byte(s))
	}
}

// Parse never panics, and every problem it reports names the file.
func FuzzParse(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := Parse(data, "/nonexistent/fuzz.yml")
		if err == nil {
			return
		}
		if e, ok := err.(*Error); ok {
			for _, p := range e.Problems {
				if !strings.HasPrefix(p, "/nonexistent/fuzz.yml") {
					t.Fatalf("a problem without the file's name: %q", p)
				}
			}
		}
	})
}

// Check never panics and never admits a network target outside 10.0.0.0/8 port 1717 or
// a name other than *.pods.example.com.
func FuzzCheckAddress(f *testing.F) {
	for _, s := range []string{"10.1.2.3:1717", "[::ffff:10.0.0.1]:1717", "a.pods.example.com:1717", "http://10.0.0.1:1717/x", "127.1:1717", "tcp://:1717"} {
		f.Add(s)
	}
	uw := &Module{Kind: KindUWSGI, Allow: AllowList{Addresses: []string{"10.0.0.0/8:1717", "*.pods.example.com:1717"}}}
	ng := &Module{Kind: KindNginx, Allow: AllowList{Addresses: []string{"10.0.0.0/8:1717", "*.pods.example.com:1717"}}}
	if err := uw.Allow.compile(uw.Kind); err != nil {
		f.Fatal(err)
	}
	if err := ng.Allow.compile(ng.Kind); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, target string) {
		for _, m := range []*Module{uw, ng} {
			ad, err := m.Check(target)
			if err != nil {
				continue
			}
			ad.Close()
			host, port, herr := admittedHostPort(m.Kind, ad.Address)
			if herr != nil {
				t.Fatalf("%s admitted %q, which has no host: %v", m.Kind, target, herr)
			}
			if port != 1717 {
				t.Fatalf("%s admitted %q: port %d", m.Kind, target, port)
			}
			ip, ipErr := netip.ParseAddr(host)
			inNet := ipErr == nil && netip.MustParsePrefix("10.0.0.0/8").Contains(ip.Unmap())
			if !inNet && !strings.HasSuffix(strings.TrimSuffix(strings.ToLower(host), "."), ".pods.example.com") {
				t.Fatalf("%s admitted %q: host %q", m.Kind, target, host)
			}
		}
	})
}

// admittedHostPort is the host and port an admitted network address connects to.
func admittedHostPort(kind, address string) (string, int, error) {
	if kind == KindUWSGI {
		a, err := uwsgi.ParseAddress(address)
		if err != nil {
			return "", 0, err
		}
		if a.Transport == uwsgi.HTTP {
			return urlHostPort(a.URL)
		}
		return splitPort(a.Host)
	}
	t, err := nginx.ParseAddress(address)
	if err != nil {
		return "", 0, err
	}
	return urlHostPort(t.URL.String())
}
