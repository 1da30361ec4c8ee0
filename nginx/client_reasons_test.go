package nginx

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
	"github.com/wsgi-exporter/wsgi_exporter/internal/testcert"
)

// serveRaw accepts connections on l and hands each to handle; the connection is closed when
// handle returns.
func serveRaw(t *testing.T, l net.Listener, handle func(net.Conn)) {
	t.Helper()
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
				handle(conn)
			})
		}
	})
}

func listenTCP(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveRaw(t, l, handle)
	return l.Addr().String()
}

// listenUnix listens on a socket in a directory anyone may search, so that an unprivileged
// helper process reaches the socket itself.
func listenUnix(t *testing.T, mode os.FileMode, handle func(net.Conn)) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "nginx-reasons-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "status.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sock, mode); err != nil {
		t.Fatal(err)
	}
	serveRaw(t, l, handle)
	return sock
}

// readRequest consumes one request, so that closing the connection afterwards is a clean
// FIN rather than a reset.
func readRequest(conn net.Conn) {
	_, _ = http.ReadRequest(bufio.NewReader(conn))
}

func answerStub(conn net.Conn) {
	readRequest(conn)
	_, _ = fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(idleBody), idleBody)
}

// tlsServer serves stub_status over TLS with cfg (its certificate is signed by ca).
func tlsServer(t *testing.T, ca *testcert.Cert, cfg *tls.Config) string {
	t.Helper()
	leaf := testcert.New(t, "nginx", ca)
	pair := leaf.Pair(t)
	cfg.Certificates = []tls.Certificate{pair}
	ts := httptest.NewUnstartedServer(stubHandler(idleBody))
	ts.TLS = cfg
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshakes are the point
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts.URL + "/stub_status"
}

const helperURIEnv = "NGINX_TEST_HELPER_FETCH_URI"

// TestHelperFetch is not a test of its own: fetchAsUnprivileged runs the test binary with it
// to fetch a page as another user and print the outcome.
func TestHelperFetch(t *testing.T) {
	uri := os.Getenv(helperURIEnv)
	if uri == "" {
		t.Skip("helper process for TestFetchFailureReasons")
	}
	_, err := fetchTimeout(realClient(t, uri, Options{}), 5*time.Second)
	fmt.Printf("\nhelper-reason=%s\nhelper-error=%v\n", fetch.ReasonOf(err), err)
}

// fetchAsUnprivileged fetches uri as a user without root's right to open any socket: directly
// when the test does not run as root, else in a copy of the test binary run as nobody.
func fetchAsUnprivileged(t *testing.T, uri string) (reason, text string) {
	t.Helper()
	if os.Geteuid() != 0 {
		_, err := fetchTimeout(realClient(t, uri, Options{}), 5*time.Second)
		return fetch.ReasonOf(err), fmt.Sprint(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "nginx-test-bin-") // the build directory is root's only
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "nginx.test")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestHelperFetch$", "-test.count=1")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), helperURIEnv+"="+uri)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper as uid 65534: %v\n%s", err, out)
	}
	done := false
	for line := range strings.Lines(string(out)) {
		line = strings.TrimSuffix(line, "\n")
		if v, ok := strings.CutPrefix(line, "helper-reason="); ok {
			reason, done = v, true
		}
		if v, ok := strings.CutPrefix(line, "helper-error="); ok {
			text = v
		}
	}
	if !done {
		t.Fatalf("no outcome from the helper:\n%s", out)
	}
	return reason, text
}

// TestFetchFailureReasons: each way a fetch can fail against a real listener, and the reason
// it is counted under in wsgi_exporter_scrape_errors_total.
func TestFetchFailureReasons(t *testing.T) {
	ca := testcert.New(t, "test CA", nil)
	clientCA := testcert.New(t, "client CA", nil)
	strangerCA := testcert.New(t, "stranger CA", nil)
	clientCert := func(ca *testcert.Cert) tls.Certificate {
		c := testcert.New(t, "prometheus", ca)
		pair := c.Pair(t)
		return pair
	}
	trustCA := func(cfg *tls.Config) Options {
		cfg.RootCAs = ca.Pool()
		if cfg.MinVersion == 0 {
			cfg.MinVersion = tls.VersionTLS12
		}
		return Options{TLS: cfg}
	}
	requireClientCert := func(cfg *tls.Config) *tls.Config {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = clientCA.Pool()
		return cfg
	}

	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T) (uri string, opts Options)
		asUser bool // fetch as an unprivileged user
		reason string
		text   string
	}{
		{
			name: "response headers over 64 KiB",
			setup: func(t *testing.T) (string, Options) {
				ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					w.Header().Set("X-Pad", strings.Repeat("a", fetch.MaxResponseHeaderBytes))
					_, _ = io.WriteString(w, idleBody)
				}))
				t.Cleanup(ts.Close)
				return ts.URL + "/stub_status", Options{}
			},
			reason: fetch.ReasonTooLarge,
			text:   "response header larger than the 65536 byte limit",
		},
		{
			name: "many small response headers over 64 KiB",
			setup: func(t *testing.T) (string, Options) {
				addr := listenTCP(t, func(conn net.Conn) {
					readRequest(conn)
					w := bufio.NewWriter(conn)
					_, _ = io.WriteString(w, "HTTP/1.1 200 OK\r\n")
					for i := range 2000 {
						_, _ = fmt.Fprintf(w, "X-Pad-%d: %s\r\n", i, strings.Repeat("b", 40))
					}
					_, _ = io.WriteString(w, "Content-Length: 0\r\n\r\n")
					_ = w.Flush()
				})
				return "http://" + addr + "/stub_status", Options{}
			},
			reason: fetch.ReasonTooLarge,
			text:   "response header larger than the 65536 byte limit",
		},
		{
			name: "client certificate required, TLS 1.3",
			setup: func(t *testing.T) (string, Options) {
				uri := tlsServer(t, ca, requireClientCert(&tls.Config{MinVersion: tls.VersionTLS13}))
				return uri, trustCA(&tls.Config{})
			},
			reason: fetch.ReasonConnect,
			text:   "remote error: tls: certificate required",
		},
		{
			name: "client certificate required, TLS 1.2",
			setup: func(t *testing.T) (string, Options) {
				uri := tlsServer(t, ca, requireClientCert(&tls.Config{MaxVersion: tls.VersionTLS12}))
				return uri, trustCA(&tls.Config{})
			},
			reason: fetch.ReasonConnect,
			text:   "remote error: tls: ",
		},
		{
			name: "client certificate of an unknown CA, TLS 1.3",
			setup: func(t *testing.T) (string, Options) {
				uri := tlsServer(t, ca, requireClientCert(&tls.Config{MinVersion: tls.VersionTLS13}))
				// Offered whatever the server asks for (Go's client would send no certificate at
				// all when it is not signed by one of the CAs the server names).
				stranger := clientCert(strangerCA)
				return uri, trustCA(&tls.Config{GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
					return &stranger, nil
				}})
			},
			reason: fetch.ReasonConnect,
			text:   "remote error: tls: unknown certificate authority",
		},
		{
			name: "client certificate accepted", // the control case
			setup: func(t *testing.T) (string, Options) {
				uri := tlsServer(t, ca, requireClientCert(&tls.Config{MinVersion: tls.VersionTLS13}))
				return uri, trustCA(&tls.Config{Certificates: []tls.Certificate{clientCert(clientCA)}})
			},
			text: "<nil>",
		},
		{
			name: "no common TLS version",
			setup: func(t *testing.T) (string, Options) {
				uri := tlsServer(t, ca, &tls.Config{MinVersion: tls.VersionTLS13})
				return uri, trustCA(&tls.Config{MaxVersion: tls.VersionTLS12})
			},
			reason: fetch.ReasonConnect,
			text:   "remote error: tls: protocol version not supported",
		},
		{
			name: "server certificate of an unknown CA",
			setup: func(t *testing.T) (string, Options) {
				return tlsServer(t, strangerCA, &tls.Config{}), trustCA(&tls.Config{})
			},
			reason: fetch.ReasonConnect,
			text:   "certificate signed by unknown authority",
		},
		{
			name: "closed during the TLS handshake",
			setup: func(t *testing.T) (string, Options) {
				addr := listenTCP(t, func(conn net.Conn) {
					_, _ = conn.Read(make([]byte, 64<<10)) // the ClientHello, then close
				})
				return "https://" + addr + "/stub_status", trustCA(&tls.Config{})
			},
			reason: fetch.ReasonConnect,
			text:   "TLS handshake",
		},
		{
			name: "closed without an answer, TCP",
			setup: func(t *testing.T) (string, Options) {
				return "http://" + listenTCP(t, readRequest) + "/stub_status", Options{}
			},
			reason: fetch.ReasonRead,
			text:   ": EOF",
		},
		{
			name: "closed without an answer, unix socket",
			setup: func(t *testing.T) (string, Options) {
				return "unix://" + listenUnix(t, 0o666, readRequest) + "?path=/stub_status", Options{}
			},
			reason: fetch.ReasonRead,
			text:   ": EOF",
		},
		{
			name: "closed inside the response headers",
			setup: func(t *testing.T) (string, Options) {
				addr := listenTCP(t, func(conn net.Conn) {
					readRequest(conn)
					_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Type: text/pl")
				})
				return "http://" + addr + "/stub_status", Options{}
			},
			reason: fetch.ReasonRead,
			text:   "unexpected EOF",
		},
		{
			name: "refused",
			setup: func(t *testing.T) (string, Options) {
				return fmt.Sprintf("http://127.0.0.1:%d/stub_status", deadPort(t)), Options{}
			},
			reason: fetch.ReasonConnect,
			text:   "connection refused",
		},
		{
			name: "unix socket the exporter may not open",
			setup: func(t *testing.T) (string, Options) {
				return "unix://" + listenUnix(t, 0o000, answerStub) + "?path=/stub_status", Options{}
			},
			asUser: true,
			reason: fetch.ReasonPermission,
			text:   "permission denied",
		},
		{
			name: "unix socket the exporter may open", // the control case of the one above
			setup: func(t *testing.T) (string, Options) {
				return "unix://" + listenUnix(t, 0o666, answerStub) + "?path=/stub_status", Options{}
			},
			asUser: true,
			text:   "<nil>",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			uri, opts := tc.setup(t)
			var reason, text string
			if tc.asUser {
				reason, text = fetchAsUnprivileged(t, uri)
			} else {
				st, err := fetchTimeout(realClient(t, uri, opts), 5*time.Second)
				if err == nil && st != idleStatus {
					t.Fatalf("%+v", st)
				}
				reason, text = fetch.ReasonOf(err), fmt.Sprint(err)
			}
			if reason != tc.reason {
				t.Fatalf("reason %q, want %q (%s)", reason, tc.reason, text)
			}
			if !strings.Contains(text, tc.text) {
				t.Fatalf("error %q does not contain %q", text, tc.text)
			}
		})
	}
}
