package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/wsgi-exporter/wsgi_exporter/internal/testcert"
)

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{CAFile: "/nonexistent/ca.pem"}, "reading the CA file"},
		{Options{CAFile: testcert.WriteFile(t, "ca.pem", []byte("not pem"))}, "holds no PEM certificate"},
		{Options{CertFile: "/x.pem"}, "needs both"},
		{Options{KeyFile: "/x.key"}, "needs both"},
		{Options{CertFile: "/nonexistent/c.pem", KeyFile: "/nonexistent/c.key"}, "loading the client certificate"},
	} {
		_, err := tc.o.Config()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.o, err, tc.want)
		}
	}
}

func TestConfig(t *testing.T) {
	cfg, err := Options{}.Config()
	if err != nil || cfg.InsecureSkipVerify || cfg.RootCAs != nil || cfg.MinVersion != tls.VersionTLS12 {
		t.Fatalf("default must verify against the system roots: %+v %v", cfg, err)
	}
	ca := testcert.New(t, "ca", nil)
	leaf := testcert.New(t, "prometheus", ca)
	certFile, keyFile := leaf.Write(t, t.TempDir(), "client")
	cfg, err = Options{CAFile: testcert.WriteFile(t, "ca.pem", ca.CertPEM), CertFile: certFile, KeyFile: keyFile, SkipVerify: true}.Config()
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.InsecureSkipVerify || len(cfg.Certificates) != 1 || cfg.RootCAs == nil {
		t.Fatalf("options not applied: %+v", cfg)
	}
	if !cfg.RootCAs.Equal(ca.Pool()) {
		t.Fatal("the CA file's certificate is not the only root")
	}
}

// TestIsHandshakeFailure runs real handshakes: each failing one is recognised, and errors that
// are not about TLS are not.
func TestIsHandshakeFailure(t *testing.T) {
	ca := testcert.New(t, "ca", nil)
	server := testcert.New(t, "server", ca)
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{server.Pair(t)},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.Pool(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				_ = c.(*tls.Conn).Handshake()
				_, _ = io.Copy(io.Discard, c)
				c.Close()
			}()
		}
	}()
	handshake := func(cfg *tls.Config) error {
		c, err := tls.Dial("tcp", l.Addr().String(), cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		// With TLS 1.3 the server's refusal of the client certificate comes with the first read.
		_, err = c.Read(make([]byte, 1))
		return err
	}
	for name, cfg := range map[string]*tls.Config{
		"unknown authority": {},
		"wrong host name":   {RootCAs: ca.Pool(), ServerName: "other.example"},
		"no client cert":    {RootCAs: ca.Pool()},
	} {
		err := handshake(cfg)
		if err == nil || !IsHandshakeFailure(err) {
			t.Errorf("%s: %v not recognised", name, err)
		}
		if !IsHandshakeFailure(fmt.Errorf("wrapped: %w", err)) {
			t.Errorf("%s: wrapped error not recognised", name)
		}
	}
	for _, err := range []error{
		io.EOF,
		errors.New("x509: nothing"),
		&net.OpError{Op: "dial", Err: errors.New("connection refused")},
		x509.SystemRootsError{},
	} {
		if IsHandshakeFailure(err) {
			t.Errorf("%v taken for a handshake failure", err)
		}
	}
}
