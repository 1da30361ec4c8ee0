package nginx

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jarcoal/httpmock"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
	"github.com/wsgi-exporter/wsgi_exporter/internal/testcert"
	"github.com/wsgi-exporter/wsgi_exporter/internal/tlsconfig"
)

const idleBody = "Active connections: 1 \nserver accepts handled requests\n 1 1 1 \nReading: 0 Writing: 1 Waiting: 0 \n"

var idleStatus = StubStatus{Active: 1, Accepted: 1, Handled: 1, Requests: 1, Writing: 1}

// mockClient returns a client for uri whose transport is an httpmock transport.
func mockClient(t *testing.T, uri string, opts Options) (*Client, *httpmock.MockTransport) {
	t.Helper()
	target, err := ParseAddress(uri)
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(target, opts)
	mt := httpmock.NewMockTransport()
	c.http.Transport = mt
	c.direct = nil // the mock answers through the transport, not the direct path
	return c, mt
}

func fetchTimeout(c *Client, d time.Duration) (StubStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return c.Fetch(ctx)
}

func wantReason(t *testing.T, err error, reason, text string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want reason %s", reason)
	}
	if r := fetch.ReasonOf(err); r != reason {
		t.Fatalf("reason %q, want %q (%v)", r, reason, err)
	}
	if !strings.Contains(err.Error(), text) {
		t.Fatalf("error %q does not contain %q", err, text)
	}
}

func TestFetchFixtureOverMock(t *testing.T) {
	c, mt := mockClient(t, "http://127.0.0.1:8080/stub_status", Options{})
	body := readFixture(t, "stub_status_after_load_http.txt")
	var got *http.Request
	mt.RegisterResponder("GET", "http://127.0.0.1:8080/stub_status", func(r *http.Request) (*http.Response, error) {
		got = r
		return httpmock.NewBytesResponse(200, body), nil
	})
	st, err := fetchTimeout(c, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if st != golden["stub_status_after_load_http.txt"] {
		t.Fatalf("%+v", st)
	}
	if _, _, ok := got.BasicAuth(); ok {
		t.Fatal("basic auth sent without being configured")
	}
	if got.Host != "127.0.0.1:8080" || got.Header.Get("User-Agent") != "wsgi_exporter" {
		t.Fatalf("host %q, user agent %q", got.Host, got.Header.Get("User-Agent"))
	}
}

func TestFetchSendsAuthAndHost(t *testing.T) {
	c, mt := mockClient(t, "unix:/run/nginx.sock:/basic_status", Options{Username: "prom", Password: "s3cr:et", Host: "status.internal"})
	mt.RegisterResponder("GET", "http://unix/basic_status", func(r *http.Request) (*http.Response, error) {
		u, p, ok := r.BasicAuth()
		if !ok || u != "prom" || p != "s3cr:et" {
			return httpmock.NewStringResponse(401, "no"), nil
		}
		if r.Host != "status.internal" {
			return httpmock.NewStringResponse(404, "wrong vhost "+r.Host), nil
		}
		return httpmock.NewStringResponse(200, idleBody), nil
	})
	st, err := fetchTimeout(c, time.Second)
	if err != nil || st != idleStatus {
		t.Fatalf("%+v %v", st, err)
	}
}

func TestFetchStatusErrors(t *testing.T) {
	for _, tc := range []struct {
		code int
		want string
	}{
		{401, "nginx answered 401 Unauthorized, want 200 OK"},
		{403, "nginx answered 403 Forbidden"},
		{404, "nginx answered 404 Not Found"},
		{301, "nginx answered 301 Moved Permanently"},
		{502, "nginx answered 502 Bad Gateway"},
	} {
		c, mt := mockClient(t, "http://127.0.0.1:1/s", Options{})
		mt.RegisterResponder("GET", "http://127.0.0.1:1/s", func(*http.Request) (*http.Response, error) {
			r := httpmock.NewStringResponse(tc.code, "<html>SECRET-PAGE-BODY "+strings.Repeat("x", 100000)+"</html>")
			r.Status = fmt.Sprintf("%d %s", tc.code, http.StatusText(tc.code))
			r.Header.Set("Location", "http://elsewhere/")
			return r, nil
		})
		_, err := fetchTimeout(c, time.Second)
		wantReason(t, err, fetch.ReasonHTTPStatus, tc.want)
		if strings.Contains(err.Error(), "SECRET") {
			t.Fatalf("error repeats the body: %v", err)
		}
	}
}

func TestFetchOversizedBody(t *testing.T) {
	big := idleBody + strings.Repeat("#", DefaultMaxBodySize)
	c, mt := mockClient(t, "http://127.0.0.1:1/s", Options{})
	// With a Content-Length: refused before reading.
	mt.RegisterResponder("GET", "http://127.0.0.1:1/s", func(*http.Request) (*http.Response, error) {
		r := httpmock.NewStringResponse(200, big)
		r.ContentLength = int64(len(big))
		return r, nil
	})
	_, err := fetchTimeout(c, time.Second)
	wantReason(t, err, fetch.ReasonTooLarge, fmt.Sprintf("response of %d bytes is larger than the 65536 byte limit", len(big)))

	// Without one (chunked): cut at the limit.
	mt.RegisterResponder("GET", "http://127.0.0.1:1/s", func(*http.Request) (*http.Response, error) {
		r := httpmock.NewStringResponse(200, big)
		r.ContentLength = -1
		return r, nil
	})
	_, err = fetchTimeout(c, time.Second)
	wantReason(t, err, fetch.ReasonTooLarge, "larger than the 65536 byte limit")

	// A smaller configured cap applies.
	c, mt = mockClient(t, "http://127.0.0.1:1/s", Options{MaxBodySize: 50})
	mt.RegisterResponder("GET", "http://127.0.0.1:1/s", httpmock.NewStringResponder(200, idleBody))
	_, err = fetchTimeout(c, time.Second)
	wantReason(t, err, fetch.ReasonTooLarge, "50 byte limit")
}

// blockingBody sends a prefix, then blocks until the request is cancelled.
type blockingBody struct {
	ctx    context.Context
	prefix string
}

func (b *blockingBody) Read(p []byte) (int, error) {
	if b.prefix != "" {
		n := copy(p, b.prefix)
		b.prefix = b.prefix[n:]
		return n, nil
	}
	<-b.ctx.Done()
	return 0, b.ctx.Err()
}
func (b *blockingBody) Close() error { return nil }

func TestFetchSlowBodyOverMock(t *testing.T) {
	c, mt := mockClient(t, "http://127.0.0.1:1/s", Options{})
	mt.RegisterResponder("GET", "http://127.0.0.1:1/s", func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Status: "200 OK", Header: http.Header{}, ContentLength: -1,
			Body: &blockingBody{ctx: r.Context(), prefix: "Active connections: 1 \n"}, Request: r}, nil
	})
	_, err := fetchTimeout(c, 100*time.Millisecond)
	wantReason(t, err, fetch.ReasonTimeout, "deadline exceeded")
}

func TestFetchGarbage(t *testing.T) {
	c, mt := mockClient(t, "http://127.0.0.1:1/s", Options{})
	mt.RegisterResponder("GET", "http://127.0.0.1:1/s", httpmock.NewStringResponder(200, "<html>Welcome to nginx!</html>"))
	_, err := fetchTimeout(c, time.Second)
	wantReason(t, err, fetch.ReasonDecode, "only 1 of the 4 stub_status lines")
}

// --- real sockets ---

func stubHandler(body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/stub_status" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, body)
	})
}

// serveUnix serves h on a unix socket in a temporary directory whose name contains ':'.
func serveUnix(t *testing.T, h http.Handler) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ngx:sock-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "st:atus.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return sock
}

func deadPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func realClient(t *testing.T, uri string, opts Options) *Client {
	t.Helper()
	target, err := ParseAddress(uri)
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(target, opts)
	t.Cleanup(c.Close)
	return c
}

// TestTransportsAreNotShared: the peer exporter shares one transport whose dialer a unix
// target overwrites, so a dead http target then reads the socket. Here it must stay dead.
func TestTransportsAreNotShared(t *testing.T) {
	sock := serveUnix(t, stubHandler(idleBody))
	unix := realClient(t, "unix://"+sock+"?path=/stub_status", Options{})
	dead := realClient(t, fmt.Sprintf("http://127.0.0.1:%d/stub_status", deadPort(t)), Options{})
	peer := realClient(t, "unix:"+t.TempDir()+"/x.sock:/stub_status", Options{}) // no such socket
	for range 3 {
		st, err := fetchTimeout(unix, 5*time.Second)
		if err != nil || st != idleStatus {
			t.Fatalf("unix: %+v %v", st, err)
		}
		_, err = fetchTimeout(dead, 5*time.Second)
		wantReason(t, err, fetch.ReasonConnect, "connection refused")
		_, err = fetchTimeout(peer, 5*time.Second)
		wantReason(t, err, fetch.ReasonConnect, "no such file")
	}
}

func TestFetchSlowServerHitsDeadline(t *testing.T) {
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "97")
		_, _ = io.WriteString(w, "Active connections: 1 \n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer ts.Close()
	defer close(release)
	c := realClient(t, ts.URL+"/stub_status", Options{})
	_, err := fetchTimeout(c, 200*time.Millisecond)
	wantReason(t, err, fetch.ReasonTimeout, "context deadline exceeded")
}

func TestFetchNoHeadersHitsDeadline(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			defer conn.Close() // accepts and never answers
		}
	}()
	c := realClient(t, "http://"+l.Addr().String()+"/stub_status", Options{})
	_, err = fetchTimeout(c, 200*time.Millisecond)
	wantReason(t, err, fetch.ReasonTimeout, "no answer from http://")
}

func TestFetchTLS(t *testing.T) {
	ca := testcert.New(t, "test CA", nil)
	srvCert := testcert.New(t, "nginx", ca)
	clientCA := testcert.New(t, "client CA", nil)
	clientCert := testcert.New(t, "prometheus", clientCA)

	ts := httptest.NewUnstartedServer(stubHandler(idleBody))
	pair := srvCert.Pair(t)
	pool := x509.NewCertPool()
	pool.AddCert(clientCA.Cert)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool}
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshakes below are expected
	ts.StartTLS()
	defer ts.Close()
	uri := ts.URL + "/stub_status"

	caFile := testcert.WriteFile(t, "ca.pem", ca.CertPEM)
	tlsOpts := func(o tlsconfig.Options) Options {
		cfg, err := o.Config()
		if err != nil {
			t.Fatal(err)
		}
		return Options{TLS: cfg}
	}

	// System roots: the test CA is unknown.
	_, err := fetchTimeout(realClient(t, uri, tlsOpts(tlsconfig.Options{})), 5*time.Second)
	wantReason(t, err, fetch.ReasonConnect, "TLS handshake")
	_, err = fetchTimeout(realClient(t, uri, Options{}), 5*time.Second)
	wantReason(t, err, fetch.ReasonConnect, "certificate signed by unknown authority")

	// Our CA: verified.
	st, err := fetchTimeout(realClient(t, uri, tlsOpts(tlsconfig.Options{CAFile: caFile})), 5*time.Second)
	if err != nil || st != idleStatus {
		t.Fatalf("with CA: %+v %v", st, err)
	}
	// Insecure switch.
	st, err = fetchTimeout(realClient(t, uri, tlsOpts(tlsconfig.Options{SkipVerify: true})), 5*time.Second)
	if err != nil || st != idleStatus {
		t.Fatalf("insecure: %+v %v", st, err)
	}
	// A Host header is also the server name checked against the certificate.
	o := tlsOpts(tlsconfig.Options{CAFile: caFile})
	o.Host = "status.internal:443"
	if _, err = fetchTimeout(realClient(t, uri, o), 5*time.Second); err != nil {
		t.Fatalf("host header in the certificate: %v", err)
	}
	o.Host = "other.example"
	_, err = fetchTimeout(realClient(t, uri, o), 5*time.Second)
	wantReason(t, err, fetch.ReasonConnect, "other.example")

	// Client certificate: the server sees it.
	ts.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) == 0 || r.TLS.PeerCertificates[0].Subject.CommonName != "prometheus" {
			http.Error(w, "no client certificate", http.StatusForbidden)
			return
		}
		_, _ = io.WriteString(w, idleBody)
	})
	_, err = fetchTimeout(realClient(t, uri, tlsOpts(tlsconfig.Options{CAFile: caFile})), 5*time.Second)
	wantReason(t, err, fetch.ReasonHTTPStatus, "403 Forbidden")
	st, err = fetchTimeout(realClient(t, uri, tlsOpts(tlsconfig.Options{
		CAFile:   caFile,
		CertFile: testcert.WriteFile(t, "client.pem", clientCert.CertPEM),
		KeyFile:  testcert.WriteFile(t, "client.key", clientCert.KeyPEM),
	})), 5*time.Second)
	if err != nil || st != idleStatus {
		t.Fatalf("client certificate: %+v %v", st, err)
	}
}

// BenchmarkFetchUnix is one full read over a unix socket with a kept-alive connection:
// request, response, parse.
func BenchmarkFetchUnix(b *testing.B) {
	sock := filepath.Join(b.TempDir(), "n.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: stubHandler(idleBody), ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	target, err := ParseAddress("unix:" + sock + ":/stub_status")
	if err != nil {
		b.Fatal(err)
	}
	c := NewClient(target, Options{})
	defer c.Close()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Fetch(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func TestFetchNotHTTP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			// Read the request first: a server that writes before it would race with the
			// request and make Go report an unsolicited response instead.
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, _ = http.ReadRequest(bufio.NewReader(conn))
			_, _ = io.WriteString(conn, `{"version":"2.0.21","workers":[]}`) // a uWSGI stats server
			conn.Close()
		}
	}()
	c := realClient(t, "http://"+l.Addr().String()+"/stub_status", Options{})
	_, err = fetchTimeout(c, 5*time.Second)
	wantReason(t, err, fetch.ReasonDecode, "does not speak HTTP")
}
