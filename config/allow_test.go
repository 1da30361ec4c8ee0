package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

func module(t *testing.T, kind string, allow AllowList) *Module {
	t.Helper()
	m := &Module{Kind: kind, Allow: allow, Name: "m"}
	if err := m.Allow.compile(kind); err != nil {
		t.Fatalf("compile: %v", err)
	}
	return m
}

// outcome is "ok", "400", or "403 <reason>".
func outcome(ad *Admitted, err error) string {
	var re *RefusedError
	var te *TargetError
	switch {
	case errors.As(err, &re):
		return "403 " + re.Reason
	case errors.As(err, &te):
		return "400"
	case err != nil:
		return "error " + err.Error()
	case ad.Err != nil:
		return "down " + fetch.ReasonOf(ad.Err)
	}
	return "ok"
}

func TestAllowNetworkTargets(t *testing.T) {
	uw := module(t, KindUWSGI, AllowList{Addresses: []string{
		"10.0.0.0/8", "[fd00::/8]:9191", "127.0.0.1:*", "*.pods.example.com:1717", "web-*.example.com", "192.0.2.7:1717",
	}})
	cases := map[string]string{
		"10.1.2.3:1717":                          "ok",
		"tcp://10.255.255.255:1":                 "ok",
		"11.0.0.1:1717":                          "403 address",
		"[::ffff:10.1.2.3]:1717":                 "ok", // IPv4-mapped: the IPv4 rules apply
		"[::ffff:11.0.0.1]:1717":                 "403 address",
		"[fd12::1]:9191":                         "ok",
		"[fd12::1]:9192":                         "403 address",
		"[fe80::1%25eth0]:9191":                  "403 address", // a zone never matches
		"[fe80::1%eth0]:9191":                    "403 address",
		"127.0.0.1:65535":                        "ok",
		"127.0.0.2:1717":                         "403 address",
		"192.0.2.7:1717":                         "ok",
		"192.0.2.7:1718":                         "403 address",
		"a.pods.example.com:1717":                "ok",
		"A.Pods.Example.COM.:1717":               "ok",
		"a.pods.example.com:1718":                "403 address",
		"a.b.pods.example.com:1717":              "403 address", // * is one label
		"pods.example.com:1717":                  "403 address",
		"evilpods.example.com:1717":              "403 address",
		"a.pods.example.com.evil.:1717":          "403 address",
		"web-1.example.com:80":                   "ok",
		"web-1.example.com:8443":                 "ok",
		"web-.example.com:80":                    "403 address", // * is one or more characters
		"web.example.com:80":                     "403 address",
		"localhost:1717":                         "403 address", // names never match IP rules
		"127.1:1717":                             "400",         // read as 127.0.0.1 by resolvers
		"2130706433:1717":                        "400",
		"0x7f000001:1717":                        "400",
		"tcp://:1717":                            "400", // an empty host dials this machine
		":1717":                                  "400",
		"10.1.2.3":                               "400",
		"http://10.1.2.3:9191/":                  "ok",
		"https://a.pods.example.com:1717":        "ok",
		"http://10.1.2.3:9191@evil.example.com/": "400", // credentials are refused by the parser
		"http://11.1.2.3/":                       "403 address",
		"unix:///run/uwsgi/a.sock":               "403 scheme",
		"file:///etc/passwd":                     "403 scheme",
		"gopher://10.1.2.3:70":                   "400",
		"":                                       "400",
	}
	for target, want := range cases {
		ad, err := uw.Check(target)
		if got := outcome(ad, err); got != want {
			t.Errorf("%q: got %s, want %s (%v)", target, got, want, err)
		}
		if err == nil && ad.Address != target {
			t.Errorf("%q: address %q", target, ad.Address)
		}
		ad.Close()
	}

	ng := module(t, KindNginx, AllowList{Addresses: []string{"10.0.0.0/8:80", "status.example.com:443"}})
	for target, want := range map[string]string{
		"http://10.1.2.3/stub_status":           "ok",
		"http://10.1.2.3:80/stub_status":        "ok",
		"https://10.1.2.3/stub_status":          "403 address", // port 443
		"https://status.example.com/x":          "ok",
		"http://status.example.com/x":           "403 address",
		"http://10.1.2.3#@status.example.com/x": "400",
		"http://u:p@10.1.2.3/":                  "400",
		"unix:/run/nginx.sock:/status":          "403 scheme",
		"10.1.2.3:80":                           "400",
	} {
		ad, err := ng.Check(target)
		if got := outcome(ad, err); got != want {
			t.Errorf("nginx %q: got %s, want %s (%v)", target, got, want, err)
		}
		ad.Close()
	}
}

func TestAllowRulesRefusedAtLoad(t *testing.T) {
	for _, e := range []string{"", "10.0.0.0/33", "10.0.0.0/8:0", "10.0.0.0/8:70000", "a..b", "a b", "*.123", "[fd00::/8", "fd00::1:x:y"} {
		a := AllowList{Addresses: []string{e}}
		if err := a.compile(KindUWSGI); err == nil {
			t.Errorf("%q accepted", e)
		}
	}
	for _, e := range []string{"10.0.0.0/8", "::1", "[::1]:1", "[::/0]:*", "0.0.0.0/0:1717", "*", "*:1", "x-*-y.example.com:2"} {
		a := AllowList{Addresses: []string{e}}
		if err := a.compile(KindUWSGI); err != nil {
			t.Errorf("%q refused: %v", e, err)
		}
	}
}

// serve listens on a unix socket and answers every connection with its own name.
func serve(t *testing.T, path string) {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte(path))
			c.Close()
		}
	}()
}

// reach connects to a uwsgi unix address and returns the answer.
func reach(t *testing.T, address string) string {
	t.Helper()
	c, err := net.Dial("unix", strings.TrimPrefix(address, "unix://"))
	if err != nil {
		t.Fatalf("dial %s: %v", address, err)
	}
	defer c.Close()
	b := make([]byte, 4096)
	n, _ := c.Read(b)
	return string(b[:n])
}

// A layout for the path rules:
//
//	root/allowed/app.sock          a socket
//	root/allowed/sub/deep.sock     a socket
//	root/allowed/file              a regular file
//	root/allowed/out.sock -> ../secret/s.sock
//	root/allowed/outdir -> ../secret
//	root/allowed/in.sock -> sub/deep.sock
//	root/allowed-evil/e.sock       a sibling whose name starts like the allowed one
//	root/secret/s.sock             a socket outside
//	root/link -> allowed           an allowed directory given through a symlink
func layout(t *testing.T) string {
	t.Helper()
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"allowed/sub", "allowed-evil", "secret", "mp/app1", "mp/app2", "pid"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []string{"allowed/app.sock", "allowed/sub/deep.sock", "allowed-evil/e.sock", "secret/s.sock"} {
		serve(t, filepath.Join(root, s))
	}
	if err := os.WriteFile(filepath.Join(root, "allowed/file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for link, to := range map[string]string{
		"allowed/out.sock": "../secret/s.sock",
		"allowed/outdir":   "../secret",
		"allowed/in.sock":  "sub/deep.sock",
		"link":             "allowed",
		"mp/escape":        "../secret",
		"mp/inside":        "app1",
		"pid/app.pid":      "/etc/hostname",
	} {
		if err := os.Symlink(to, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestAllowUnixSockets(t *testing.T) {
	root := layout(t)
	for _, prefix := range []string{root + "/allowed", root + "/link", root + "/allowed/"} {
		m := module(t, KindUWSGI, AllowList{UnixSockets: []string{prefix}})
		cases := map[string]string{
			"unix://" + root + "/allowed/app.sock":                "ok " + root + "/allowed/app.sock",
			"unix://" + root + "/allowed/sub/deep.sock":           "ok " + root + "/allowed/sub/deep.sock",
			"unix://" + root + "/allowed/in.sock":                 "ok " + root + "/allowed/sub/deep.sock", // a symlink that stays inside
			"unix://" + root + "/link/app.sock":                   "ok " + root + "/allowed/app.sock",
			"unix://" + root + "/allowed/./sub/../app.sock":       "ok " + root + "/allowed/app.sock",
			"unix://" + root + "/allowed/../secret/s.sock":        "403 path",
			"unix://" + root + "/allowed/sub/../../secret/s.sock": "403 path",
			"unix://" + root + "/allowed/out.sock":                "403 symlink",
			"unix://" + root + "/allowed/outdir/s.sock":           "403 symlink",
			"unix://" + root + "/allowed-evil/e.sock":             "403 path",
			"unix://" + root + "/secret/s.sock":                   "403 path",
			"unix://" + root + "/allowed/missing.sock":            "down connect",
			"unix://" + root + "/allowed/file":                    "down connect",
			"unix://" + root + "/allowed/*.sock":                  "400",
			"unix://allowed/app.sock":                             "400",
			"file://" + root + "/allowed/file":                    "403 scheme",
			"127.0.0.1:1717":                                      "403 scheme",
		}
		// A path must be below a listed directory as written, too.
		if prefix == root+"/link" {
			for k := range cases {
				if cases[k] != "400" && strings.HasPrefix(k, "unix://"+root+"/allowed/") {
					cases[k] = "403 path"
				}
			}
		} else {
			cases["unix://"+root+"/link/app.sock"] = "403 path"
		}
		for target, want := range cases {
			ad, err := m.Check(target)
			got := outcome(ad, err)
			if got == "ok" {
				got += " " + reach(t, ad.Address)
				if !strings.HasPrefix(ad.Address, "unix:///proc/self/fd/") {
					t.Errorf("%q: not pinned: %s", target, ad.Address)
				}
			}
			if got != want {
				t.Errorf("prefix %s, %q: got %s, want %s (%v)", prefix, target, got, want, err)
			}
			ad.Close()
		}
	}
}

// Once checked, the socket is pinned: swapping the path for a symlink to another socket
// does not redirect the connection.
func TestAllowSocketPinned(t *testing.T) {
	root := layout(t)
	m := module(t, KindUWSGI, AllowList{UnixSockets: []string{root + "/allowed"}})
	ad, err := m.Check("unix://" + root + "/allowed/app.sock")
	if err != nil || ad.Err != nil {
		t.Fatal(err, ad.Err)
	}
	defer ad.Close()
	p := filepath.Join(root, "allowed/app.sock")
	if err := os.Rename(p, p+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(root+"/secret/s.sock", p); err != nil {
		t.Fatal(err)
	}
	if got := reach(t, ad.Address); got != p {
		t.Errorf("reached %s, want %s", got, p)
	}
	if got := reach(t, "unix://"+p); got != root+"/secret/s.sock" {
		t.Fatalf("the swap did not work: %s", got)
	}
	ad2, err := m.Check("unix://" + p)
	if outcome(ad2, err) != "403 symlink" {
		t.Errorf("after the swap: %s", outcome(ad2, err))
	}
}

func TestAllowNginxUnix(t *testing.T) {
	root := layout(t)
	m := module(t, KindNginx, AllowList{UnixSockets: []string{root + "/allowed"}})
	for target, want := range map[string]string{
		"unix:" + root + "/allowed/app.sock:/status":              "/status",
		"unix://" + root + "/allowed/app.sock?path=/stub%3Fx%3D1": "/stub?x=1",
		"unix:" + root + "/allowed/out.sock:/status":              "403 symlink",
		"unix:" + root + "/allowed/../secret/s.sock":              "403 path",
		"http://127.0.0.1/":                                       "403 scheme",
	} {
		ad, err := m.Check(target)
		got := outcome(ad, err)
		if got == "ok" {
			if !strings.HasPrefix(ad.Address, "unix:///proc/self/fd/") {
				t.Errorf("%q: not pinned: %s", target, ad.Address)
			}
			got = ad.Address[strings.Index(ad.Address, "?"):]
			want = "?" + "path=" + strings.NewReplacer("/", "%2F", "?", "%3F", "=", "%3D").Replace(want)
		}
		if got != want {
			t.Errorf("%q: got %s, want %s (%v)", target, got, want, err)
		}
		ad.Close()
	}
}

func TestAllowLocalPaths(t *testing.T) {
	root := layout(t)
	mp := module(t, KindMultiproc, AllowList{Paths: []string{root + "/mp"}})
	for target, want := range map[string]string{
		root + "/mp/app1":          "ok " + root + "/mp/app1",
		root + "/mp/app2/":         "ok " + root + "/mp/app2",
		root + "/mp":               "ok " + root + "/mp",
		root + "/mp/inside":        "ok " + root + "/mp/app1",
		root + "/mp/escape":        "403 symlink",
		root + "/mp/../secret":     "403 path",
		root + "/mp/app1/../../..": "403 path",
		root + "/mpx":              "403 path",
		"/":                        "403 path",
		root + "/mp/missing":       "down not_found",
		root + "/mp/app1/x/y":      "down not_found",
		"mp/app1":                  "400",
		"file://" + root + "/mp":   "400",
	} {
		ad, err := mp.Check(target)
		got := outcome(ad, err)
		if got == "ok" {
			got += " " + pinnedPath(t, ad.Address)
		}
		if got != want {
			t.Errorf("%q: got %s, want %s (%v)", target, got, want, err)
		}
		ad.Close()
	}
	gu := module(t, KindGunicorn, AllowList{Paths: []string{root + "/pid"}})
	if got := outcome(gu.Check(root + "/pid/app.pid")); got != "403 symlink" {
		t.Errorf("pidfile linked out: %s", got)
	}
	if got := outcome(gu.Check("/etc/hostname")); got != "403 path" {
		t.Errorf("pidfile outside: %s", got)
	}
}

// file:// is refused unless listed, and then only below the listed directories.
func TestAllowFiles(t *testing.T) {
	root := layout(t)
	m := module(t, KindUWSGI, AllowList{Addresses: []string{"127.0.0.1"}, Files: []string{root + "/allowed"}})
	ad, err := m.Check("file://" + root + "/allowed/sub/../file")
	if got := outcome(ad, err); got != "ok" || !strings.HasPrefix(ad.Address, "file://") || pinnedPath(t, strings.TrimPrefix(ad.Address, "file://")) != root+"/allowed/file" {
		t.Errorf("got %s %v", got, ad)
	}
	ad.Close()
	for target, want := range map[string]string{
		"file:///etc/passwd":                           "403 path",
		"file://" + root + "/allowed/../secret/s.sock": "403 path",
		"file://" + root + "/allowed/outdir/s.sock":    "403 symlink",
		"unix://" + root + "/allowed/app.sock":         "403 scheme",
	} {
		if got := outcome(m.Check(target)); got != want {
			t.Errorf("%q: got %s, want %s", target, got, want)
		}
	}
}

func TestMatchLabel(t *testing.T) {
	for _, c := range []struct {
		p, l string
		ok   bool
	}{
		{"*", "a", true}, {"*", "", false}, {"a*", "a", false}, {"a*", "ab", true}, {"*b", "ab", true},
		{"a*b", "ab", false}, {"a*b", "axb", true}, {"a*b*c", "axbyc", true}, {"a*b*c", "abc", false},
		{"x", "x", true}, {"x", "y", false}, {"*-*", "a-b-c", true},
	} {
		if got := matchLabel(c.p, c.l); got != c.ok {
			t.Errorf("matchLabel(%q, %q) = %v", c.p, c.l, got)
		}
	}
}

func ExampleModule_Check() {
	m := &Module{Kind: KindUWSGI, Allow: AllowList{Addresses: []string{"10.0.0.0/8:1717"}}}
	if err := m.Allow.compile(m.Kind); err != nil {
		panic(err)
	}
	_, err := m.Check("192.0.2.1:1717")
	fmt.Println(err)
	// Output: 192.0.2.1 port 1717 is not in the module's addresses
}

// pinnedPath is the path an admitted local address stands for: a /proc/self/fd/N address
// (optionally followed by a file's name) names what descriptor N has open.
func pinnedPath(t *testing.T, address string) string {
	t.Helper()
	rest, ok := strings.CutPrefix(address, "/proc/self/fd/")
	if !ok {
		t.Errorf("%s is not pinned", address)
		return address
	}
	fd, name, _ := strings.Cut(rest, "/")
	dir, err := os.Readlink("/proc/self/fd/" + fd)
	if err != nil {
		t.Fatalf("%s: %v", address, err)
	}
	if name != "" {
		return dir + "/" + name
	}
	return dir
}

// Once checked, a local path is pinned: replacing the multiprocess directory, or the directory
// of a pidfile or saved document, by a symlink to another directory after the check does not
// make the probe read the other one.
func TestAllowLocalPathPinned(t *testing.T) {
	root := layout(t)
	write := func(p, content string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(root+"/mp/app1/counter_1.db", "app1")
	write(root+"/secret/counter_1.db", "secret")
	if err := os.MkdirAll(root+"/pid/app", 0o755); err != nil {
		t.Fatal(err)
	}
	write(root+"/pid/app/gunicorn.pid", "42\n")
	write(root+"/secret/gunicorn.pid", "1\n")
	write(root+"/allowed/sub/stats.json", "{}")
	write(root+"/secret/stats.json", "secret")

	for _, tc := range []struct {
		kind       string
		allow      AllowList
		target     string // what is checked
		swap       string // the directory replaced by a symlink to root/secret after the check
		read, want string // read below the admitted address; its content
		addrPrefix string
	}{
		{KindMultiproc, AllowList{Paths: []string{root + "/mp"}}, root + "/mp/app1", root + "/mp/app1", "/counter_1.db", "app1", ""},
		{KindGunicorn, AllowList{Paths: []string{root + "/pid"}}, root + "/pid/app/gunicorn.pid", root + "/pid/app", "", "42\n", ""},
		{KindUWSGI, AllowList{Files: []string{root + "/allowed"}}, "file://" + root + "/allowed/sub/stats.json", root + "/allowed/sub", "", "{}", "file://"},
	} {
		m := module(t, tc.kind, tc.allow)
		ad, err := m.Check(tc.target)
		if err != nil || ad.Err != nil {
			t.Fatalf("%s: %v %v", tc.target, err, ad.Err)
		}
		if err := os.Rename(tc.swap, tc.swap+".old"); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(root+"/secret", tc.swap); err != nil {
			t.Fatal(err)
		}
		path := strings.TrimPrefix(ad.Address, tc.addrPrefix)
		b, err := os.ReadFile(path + tc.read)
		if err != nil || string(b) != tc.want {
			t.Errorf("%s after the swap: read %q (%v), want %q", tc.target, b, err, tc.want)
		}
		// The same read by path follows the swap: the pin is what protects the probe.
		unpinned := strings.TrimPrefix(tc.target, tc.addrPrefix)
		if b, _ := os.ReadFile(unpinned + tc.read); string(b) == tc.want {
			t.Fatalf("%s: the swap did not take effect", tc.target)
		}
		ad.Close()
	}
}
