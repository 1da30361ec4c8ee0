package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsgi-exporter/wsgi_exporter/internal/testcert"
)

// nginxServer is a real nginx started by a test, with stub_status on
//   - a plain TCP port (also serving "/" for test traffic) and a unix socket,
//   - a port where it sits behind basic auth on the virtual host status.internal,
//   - an https port, when TLS material was given.
type nginxServer struct {
	Dir      string
	Port     int    // plain http: /stub_status and /
	Socket   string // the same server on a unix socket
	AuthPort int    // /stub_status behind basic auth, vhost status.internal; other hosts get 404
	TLSPort  int    // https /stub_status (0 without TLS)
	Proc     *Process
}

// nginxTLS is the server certificate and key (PEM) of the https port, and the CA whose
// client certificates /stub_status_mtls requires.
type nginxTLS struct{ certPEM, keyPEM, clientCAPEM []byte }

const nginxAuthUser, nginxAuthPassword = "prom", "s3cret pa$$"

// nginxStart writes a configuration into a temporary prefix and starts nginx on it.
func nginxStart(t *testing.T, tlsMat *nginxTLS) *nginxServer {
	t.Helper()
	RequireCommand(t, "nginx")
	dir := t.TempDir()
	// nginx's workers run as nobody when the test runs as root: they must read the htpasswd.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	n := &nginxServer{Dir: dir, Port: FreePort(t), AuthPort: FreePort(t), Socket: filepath.Join(dir, "nginx.sock")}
	nginxWrite(t, dir, "htpasswd", nginxAuthUser+":{PLAIN}"+nginxAuthPassword+"\n")
	tlsServer := ""
	if tlsMat != nil {
		n.TLSPort = FreePort(t)
		nginxWrite(t, dir, "server.pem", string(tlsMat.certPEM))
		nginxWrite(t, dir, "server.key", string(tlsMat.keyPEM))
		nginxWrite(t, dir, "client-ca.pem", string(tlsMat.clientCAPEM))
		tlsServer = fmt.Sprintf(`server { listen 127.0.0.1:%d ssl; ssl_certificate server.pem; ssl_certificate_key server.key;
    ssl_client_certificate client-ca.pem; ssl_verify_client optional;
    location = /stub_status { stub_status; }
    location = /stub_status_mtls { if ($ssl_client_verify != SUCCESS) { return 403; } stub_status; } }`, n.TLSPort)
	}
	nginxWrite(t, dir, "nginx.conf", fmt.Sprintf(`worker_processes 1;
pid nginx.pid;
error_log stderr notice;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path tmp/body; proxy_temp_path tmp/proxy; fastcgi_temp_path tmp/fastcgi;
  uwsgi_temp_path tmp/uwsgi; scgi_temp_path tmp/scgi;
  server {
    listen 127.0.0.1:%d; listen unix:%s;
    location = /stub_status { stub_status; }
    location / { return 200 "hello\n"; }
  }
  server { listen 127.0.0.1:%d default_server; return 404; }
  server {
    listen 127.0.0.1:%d; server_name status.internal;
    location = /stub_status { auth_basic "status"; auth_basic_user_file htpasswd; stub_status; }
  }
  %s
}
`, n.Port, n.Socket, n.AuthPort, n.AuthPort, tlsServer))
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	n.start(t)
	return n
}

func nginxWrite(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// start runs nginx in the foreground and waits until its ports and socket accept
// connections. The readiness probes send no HTTP request, so the request counter stays 0.
func (n *nginxServer) start(t *testing.T) {
	t.Helper()
	n.Proc = Start(t, n.Dir, nil, "nginx", "-p", n.Dir+"/", "-c", filepath.Join(n.Dir, "nginx.conf"), "-e", "stderr", "-g", "daemon off;")
	addrs := [][2]string{{"tcp", fmt.Sprintf("127.0.0.1:%d", n.Port)}, {"tcp", fmt.Sprintf("127.0.0.1:%d", n.AuthPort)}, {"unix", n.Socket}}
	if n.TLSPort != 0 {
		addrs = append(addrs, [2]string{"tcp", fmt.Sprintf("127.0.0.1:%d", n.TLSPort)})
	}
	WaitFor(t, 10*time.Second, "nginx listening", func() bool {
		if n.Proc.Exited() {
			t.Fatalf("nginx exited:\n%s", n.Proc.Output())
		}
		for _, a := range addrs {
			c, err := net.DialTimeout(a[0], a[1], time.Second)
			if err != nil {
				return false
			}
			c.Close()
		}
		return true
	})
}

func (n *nginxServer) stubURI() string { return fmt.Sprintf("http://127.0.0.1:%d/stub_status", n.Port) }

// nginxSeries are the stub_status series every up source has.
var nginxSeries = []string{
	"nginx_connections_active", "nginx_connections_accepted", "nginx_connections_handled",
	"nginx_connections_reading", "nginx_connections_writing", "nginx_connections_waiting",
	"nginx_http_requests_total",
}

func src(s string) map[string]string { return map[string]string{"source": s} }

func nginxErrors(m Metrics, source, reason string) float64 {
	return m.Sum("wsgi_exporter_scrape_errors_total", map[string]string{"kind": "nginx", "source": source, "reason": reason})
}

// TestNginxRequestsCounted sends exactly N requests and checks nginx_http_requests_total,
// over TCP and over the unix socket (each exporter has one source, so the order of
// requests nginx sees is known).
func TestNginxRequestsCounted(t *testing.T) {
	n := nginxStart(t, nil)
	tcp := n.stubURI()
	unix := "unix://" + n.Socket + "?path=/stub_status"
	xt := StartExporter(t, "--nginx.scrape-uri="+tcp)
	xu := StartExporter(t, "--nginx.scrape-uri="+unix)

	m1 := xt.Scrape(t) // request 1
	u1 := xu.Scrape(t) // request 2
	if got := m1.Get(t, "nginx_http_requests_total", src(tcp)); got != 1 {
		t.Fatalf("first request to a fresh nginx: nginx_http_requests_total %v, want 1", got)
	}
	if got := u1.Get(t, "nginx_http_requests_total", src(unix)); got != 2 {
		t.Fatalf("second request: %v, want 2", got)
	}
	const N = 37
	HTTPGetN(t, fmt.Sprintf("http://127.0.0.1:%d/", n.Port), N, 200)
	m2 := xt.Scrape(t) // request N+3
	u2 := xu.Scrape(t) // request N+4
	if got := m2.Get(t, "nginx_http_requests_total", src(tcp)); got != N+3 {
		t.Fatalf("tcp: nginx_http_requests_total %v, want %d (1 + 1 + %d sent + this scrape)", got, N+3, N)
	}
	if got := u2.Get(t, "nginx_http_requests_total", src(unix)); got != N+4 {
		t.Fatalf("unix: nginx_http_requests_total %v, want %d", got, N+4)
	}
	for _, m := range []struct {
		m Metrics
		s string
	}{{m2, tcp}, {u2, unix}} {
		if up := m.m.Get(t, "nginx_up", src(m.s)); up != 1 {
			t.Fatalf("%s: nginx_up %v", m.s, up)
		}
		for _, name := range nginxSeries {
			m.m.Get(t, name, src(m.s))
		}
		// Each scrape is being written while nginx prints the page.
		if w := m.m.Get(t, "nginx_connections_writing", src(m.s)); w < 1 {
			t.Fatalf("%s: writing %v, want at least our own connection", m.s, w)
		}
		if a, h := m.m.Get(t, "nginx_connections_accepted", src(m.s)), m.m.Get(t, "nginx_connections_handled", src(m.s)); a != h || a < 1 {
			t.Fatalf("%s: accepted %v handled %v", m.s, a, h)
		}
		PromtoolCheck(t, m.m.Raw)
	}

	// Under OpenMetrics (which Prometheus asks for first) the names stay the peer's: no
	// _total is added to nginx_connections_accepted / _handled.
	code, om := xt.Get(t, "/metrics", http.Header{"Accept": {"application/openmetrics-text; version=1.0.0"}})
	if code != 200 {
		t.Fatalf("openmetrics scrape: %d", code)
	}
	for _, want := range []string{
		"# TYPE nginx_connections_accepted unknown\n", "\nnginx_connections_accepted{source=",
		"# TYPE nginx_connections_handled unknown\n", "\nnginx_connections_handled{source=",
		"# TYPE nginx_http_requests counter\n", "\nnginx_http_requests_total{source=",
	} {
		if !strings.Contains(string(om), want) {
			t.Errorf("OpenMetrics exposition lacks %q:\n%s", want, om)
		}
	}
	if strings.Contains(string(om), "nginx_connections_accepted_total") {
		t.Errorf("OpenMetrics renamed the peer's metric:\n%s", om)
	}
}

// TestNginxMixedTargetsAndRestart: tcp, unix and two dead targets in one exporter; then nginx
// stops (all down) and comes back (all up again, with counters from zero).
func TestNginxMixedTargetsAndRestart(t *testing.T) {
	n := nginxStart(t, nil)
	tcp := n.stubURI()
	unix := "unix:" + n.Socket + ":/stub_status" // nginx-prometheus-exporter's form
	deadTCP := fmt.Sprintf("http://127.0.0.1:%d/stub_status", FreePort(t))
	deadUnix := "unix://" + filepath.Join(t.TempDir(), "no:such.sock") + "?path=/stub_status"
	x := StartExporter(t, "--nginx.scrape-uri="+tcp, "--nginx.scrape-uri="+unix,
		"--nginx.scrape-uri="+deadTCP, "--nginx.scrape-uri="+deadUnix)

	m := x.Scrape(t)
	for s, want := range map[string]float64{tcp: 1, unix: 1, deadTCP: 0, deadUnix: 0} {
		if got := m.Get(t, "nginx_up", src(s)); got != want {
			t.Errorf("nginx_up{source=%q} = %v, want %v", s, got, want)
		}
	}
	// The scrape sends one request to each live target: the two see 1 and 2 (in some order).
	if sum := m.Get(t, "nginx_http_requests_total", src(tcp)) + m.Get(t, "nginx_http_requests_total", src(unix)); sum != 3 {
		t.Fatalf("requests seen by the two live sources add up to %v, want 1+2", sum)
	}
	for _, dead := range []string{deadTCP, deadUnix} {
		for _, name := range nginxSeries {
			if c := m.Count(name, src(dead)); c != 0 {
				t.Fatalf("dead target %s reports %s (%d series): it must not show another target's numbers", dead, name, c)
			}
		}
		if e := nginxErrors(m, dead, "connect"); e != 1 {
			t.Fatalf("%s: connect errors %v, want 1", dead, e)
		}
	}
	PromtoolCheck(t, m.Raw)

	n.Proc.Stop()
	m = x.Scrape(t)
	for _, s := range []string{tcp, unix, deadTCP, deadUnix} {
		if got := m.Get(t, "nginx_up", src(s)); got != 0 {
			t.Errorf("nginx stopped: nginx_up{source=%q} = %v", s, got)
		}
		if c := m.Count("nginx_http_requests_total", src(s)); c != 0 {
			t.Errorf("nginx stopped: %s still reports requests", s)
		}
	}
	if e := nginxErrors(m, tcp, "connect"); e != 1 {
		t.Fatalf("tcp connect errors %v after the stop, want 1", e)
	}
	if e := nginxErrors(m, unix, "connect"); e != 1 {
		t.Fatalf("unix connect errors %v after the stop, want 1", e)
	}

	n.start(t)
	m = x.Scrape(t)
	for s, want := range map[string]float64{tcp: 1, unix: 1, deadTCP: 0, deadUnix: 0} {
		if got := m.Get(t, "nginx_up", src(s)); got != want {
			t.Errorf("after restart: nginx_up{source=%q} = %v, want %v", s, got, want)
		}
	}
	if sum := m.Get(t, "nginx_http_requests_total", src(tcp)) + m.Get(t, "nginx_http_requests_total", src(unix)); sum != 3 {
		t.Fatalf("after restart the counters start again: requests add up to %v, want 1+2", sum)
	}
	PromtoolCheck(t, m.Raw)
}

// nginxCert makes a CA, a server certificate for 127.0.0.1 signed by it, and a client
// certificate and key signed by it too.
func nginxCert(t *testing.T) (caPEM []byte, srv *nginxTLS, clientCert, clientKey []byte) {
	t.Helper()
	ca := testcert.New(t, "wsgi_exporter test CA", nil)
	server := testcert.New(t, "127.0.0.1", ca)
	client := testcert.New(t, "prometheus", ca)
	return ca.CertPEM, &nginxTLS{certPEM: server.CertPEM, keyPEM: server.KeyPEM, clientCAPEM: ca.CertPEM}, client.CertPEM, client.KeyPEM
}

// TestNginxTLS: verification is on by default; the CA flag makes it pass; the insecure
// switch skips it; a client certificate is presented when configured.
func TestNginxTLS(t *testing.T) {
	caPEM, srv, clientCert, clientKey := nginxCert(t)
	n := nginxStart(t, srv)
	tmp := t.TempDir()
	caFile, certFile, keyFile := filepath.Join(tmp, "ca.pem"), filepath.Join(tmp, "client.pem"), filepath.Join(tmp, "client.key")
	for f, b := range map[string][]byte{caFile: caPEM, certFile: clientCert, keyFile: clientKey} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	uri := fmt.Sprintf("https://127.0.0.1:%d/stub_status", n.TLSPort)
	mtls := uri + "_mtls"
	for _, tc := range []struct {
		name   string
		uri    string
		args   []string
		up     float64
		reason string
		log    string
	}{
		{"with CA", uri, []string{"--nginx.ssl-ca-cert=" + caFile}, 1, "", ""},
		{"system roots", uri, nil, 0, "connect", "certificate signed by unknown authority"},
		{"insecure", uri, []string{"--no-nginx.ssl-verify"}, 1, "", ""},
		{"client certificate", mtls, []string{"--nginx.ssl-ca-cert=" + caFile, "--nginx.ssl-client-cert=" + certFile, "--nginx.ssl-client-key=" + keyFile}, 1, "", ""},
		{"no client certificate", mtls, []string{"--nginx.ssl-ca-cert=" + caFile}, 0, "http_status", "nginx answered 403 Forbidden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			uri := tc.uri
			x := StartExporter(t, append([]string{"--nginx.scrape-uri=" + uri}, tc.args...)...)
			m := x.Scrape(t)
			if got := m.Get(t, "nginx_up", src(uri)); got != tc.up {
				t.Fatalf("nginx_up %v, want %v\n%s", got, tc.up, x.Output())
			}
			if tc.reason != "" {
				if e := nginxErrors(m, uri, tc.reason); e != 1 {
					t.Fatalf("%s errors %v, want 1", tc.reason, e)
				}
				if !strings.Contains(x.Output(), tc.log) {
					t.Fatalf("the log does not say %q:\n%s", tc.log, x.Output())
				}
			} else {
				m.Get(t, "nginx_http_requests_total", src(uri))
			}
			PromtoolCheck(t, m.Raw)
		})
	}
}

// TestNginxBasicAuthAndHost: stub_status behind auth_basic on the vhost status.internal.
func TestNginxBasicAuthAndHost(t *testing.T) {
	n := nginxStart(t, nil)
	good := filepath.Join(t.TempDir(), "password")
	bad := filepath.Join(t.TempDir(), "wrong")
	if err := os.WriteFile(good, []byte(nginxAuthPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	uri := fmt.Sprintf("http://127.0.0.1:%d/stub_status", n.AuthPort)
	auth := []string{"--nginx.basic-auth-user=" + nginxAuthUser, "--nginx.basic-auth-password-file=" + good}
	host := []string{"--nginx.host-header=status.internal"}
	for _, tc := range []struct {
		name   string
		args   []string
		up     float64
		status string
	}{
		{"auth and host", append(append([]string{}, auth...), host...), 1, ""},
		{"host without auth", host, 0, "401 Unauthorized"},
		{"wrong password", append([]string{"--nginx.basic-auth-user=" + nginxAuthUser, "--nginx.basic-auth-password-file=" + bad}, host...), 0, "401 Unauthorized"},
		{"auth without host", auth, 0, "404 Not Found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := StartExporter(t, append([]string{"--nginx.scrape-uri=" + uri}, tc.args...)...)
			m := x.Scrape(t)
			if got := m.Get(t, "nginx_up", src(uri)); got != tc.up {
				t.Fatalf("nginx_up %v, want %v\n%s", got, tc.up, x.Output())
			}
			if tc.status != "" {
				if e := nginxErrors(m, uri, "http_status"); e != 1 {
					t.Fatalf("http_status errors %v, want 1", e)
				}
				if !strings.Contains(x.Output(), "nginx answered "+tc.status) {
					t.Fatalf("the log does not name the status %s:\n%s", tc.status, x.Output())
				}
			} else if got := m.Get(t, "nginx_http_requests_total", src(uri)); got != 1 {
				t.Fatalf("first request to nginx: requests %v, want 1", got)
			}
			if strings.Contains(x.Output(), nginxAuthPassword) {
				t.Fatal("the password shows in the log")
			}
			PromtoolCheck(t, m.Raw)
		})
	}
}

// TestNginxStartupErrors: configuration mistakes stop the binary at start with a clear
// message and exit code 2.
func TestNginxStartupErrors(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "n.sock")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"same URI twice", []string{"--nginx.scrape-uri=http://127.0.0.1:1/stub_status", "--nginx.scrape-uri=http://127.0.0.1:1/stub_status"},
			"are the same page"},
		{"same socket in both unix forms", []string{"--nginx.scrape-uri=unix:" + sock + ":/stub_status", "--nginx.scrape-uri=unix://" + sock + "?path=/stub_status"},
			"are the same page"},
		{"credentials in the URI", []string{"--nginx.scrape-uri=http://u:hunter2@127.0.0.1:1/"}, "carries credentials"},
		{"bad scheme", []string{"--nginx.scrape-uri=tcp://127.0.0.1:1/"}, "unsupported scheme"},
		{"user without password", []string{"--nginx.scrape-uri=http://127.0.0.1:1/", "--nginx.basic-auth-user=u"}, "needs --nginx.basic-auth-password-file"},
		{"missing CA", []string{"--nginx.scrape-uri=https://127.0.0.1:1/", "--nginx.ssl-ca-cert=" + filepath.Join(dir, "none.pem")}, "reading the CA file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(exporterBin, append([]string{"--web.listen-address=127.0.0.1:0"}, tc.args...)...)
			done := make(chan struct{})
			timer := time.AfterFunc(20*time.Second, func() {
				select {
				case <-done:
				default:
					_ = cmd.Process.Kill()
				}
			})
			out, err := cmd.CombinedOutput()
			close(done)
			timer.Stop()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 2 {
				t.Fatalf("exit %v, want code 2:\n%s", err, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Fatalf("output does not say %q:\n%s", tc.want, out)
			}
			if strings.Contains(string(out), "hunter2") || strings.Contains(string(out), "panic") {
				t.Fatalf("output leaks the password or panics:\n%s", out)
			}
		})
	}
}
