package uwsgi

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
	"github.com/wsgi-exporter/wsgi_exporter/internal/testcert"
	"github.com/wsgi-exporter/wsgi_exporter/internal/tlsconfig"
)

// TestHTTPSTransport reads a stats document over https (a --stats-http server behind a TLS
// proxy): verification is on by default, a CA file, the insecure switch and a client
// certificate each do what they say, and a failed handshake is reason connect.
func TestHTTPSTransport(t *testing.T) {
	doc := fixture(t, "stats_http_4workers_idle.json")
	ca := testcert.New(t, "test CA", nil)
	server := testcert.New(t, "server", ca)
	clientCert := testcert.New(t, "prometheus", ca)
	pair := server.Pair(t)
	requireClientCert := false
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requireClientCert && (len(r.TLS.PeerCertificates) == 0 || r.TLS.PeerCertificates[0].Subject.CommonName != "prometheus") {
			http.Error(w, "no client certificate", http.StatusForbidden)
			return
		}
		_, _ = w.Write(doc)
	}))
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: ca.Pool()}
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshakes below are expected
	ts.StartTLS()
	defer ts.Close()
	addr, err := ParseAddress(ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	caFile := testcert.WriteFile(t, "ca.pem", ca.CertPEM)
	certFile, keyFile := clientCert.Write(t, t.TempDir(), "client")

	read := func(o *tlsconfig.Options) (*Stats, error) {
		t.Helper()
		var opts ClientOptions
		if o != nil {
			cfg, err := o.Config()
			if err != nil {
				t.Fatal(err)
			}
			opts.TLS = cfg
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return NewClient(addr, opts).Stats(ctx)
	}
	wantWorkers := func(st *Stats, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Workers) != 4 {
			t.Fatalf("%d workers, want the fixture's 4", len(st.Workers))
		}
	}

	// No options and empty options: the system roots, which do not know the test CA.
	for _, o := range []*tlsconfig.Options{nil, {}} {
		_, err = read(o)
		wantReason(t, err, fetch.ReasonConnect)
		if !strings.Contains(err.Error(), "TLS handshake") || !strings.Contains(err.Error(), "unknown authority") {
			t.Fatalf("error does not say why: %v", err)
		}
	}
	wantWorkers(read(&tlsconfig.Options{CAFile: caFile}))
	wantWorkers(read(&tlsconfig.Options{SkipVerify: true}))

	requireClientCert = true
	_, err = read(&tlsconfig.Options{CAFile: caFile})
	wantReason(t, err, fetch.ReasonHTTPStatus)
	wantWorkers(read(&tlsconfig.Options{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}))

	// A server that refuses a handshake without a client certificate: an alert, reason connect.
	ts2 := httptest.NewUnstartedServer(ts.Config.Handler)
	ts2.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool()}
	ts2.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts2.StartTLS()
	defer ts2.Close()
	if addr, err = ParseAddress(ts2.URL + "/"); err != nil {
		t.Fatal(err)
	}
	_, err = read(&tlsconfig.Options{CAFile: caFile})
	wantReason(t, err, fetch.ReasonConnect)
	wantWorkers(read(&tlsconfig.Options{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}))
}
