// Package tlsconfig builds the client TLS configuration toward https targets (nginx
// stub_status, uWSGI --stats-http behind TLS) from the user's flags, and recognises the errors
// of a failed handshake, which sources report with reason connect.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
)

// Options are the TLS settings toward https targets, as the flags give them.
type Options struct {
	CAFile     string // PEM bundle of CAs to trust instead of the system roots; empty: system roots
	CertFile   string // client certificate (PEM); needs KeyFile
	KeyFile    string // client key (PEM); needs CertFile
	SkipVerify bool   // accept any server certificate (insecure)
}

// Config reads the files once and returns the TLS configuration. Verification is on unless
// SkipVerify is set.
func (o Options) Config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.SkipVerify} //nolint:gosec // an explicit user choice
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading the CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("the CA file %s holds no PEM certificate", o.CAFile)
		}
		cfg.RootCAs = pool
	}
	switch {
	case o.CertFile != "" && o.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("loading the client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case o.CertFile != "" || o.KeyFile != "":
		return nil, fmt.Errorf("a client certificate needs both the certificate and the key file")
	}
	return cfg, nil
}

// IsHandshakeFailure recognises certificate errors and TLS alerts. With TLS 1.3 a server that
// requires or rejects a client certificate says so with an alert the client reads only after
// its side of the handshake is done, at its first read of the answer.
func IsHandshakeFailure(err error) bool {
	var (
		verr *tls.CertificateVerificationError
		herr x509.HostnameError
		uerr x509.UnknownAuthorityError
		cerr x509.CertificateInvalidError
		rerr tls.RecordHeaderError
		aerr tls.AlertError
		oe   *net.OpError
	)
	switch {
	case errors.As(err, &verr), errors.As(err, &herr), errors.As(err, &uerr), errors.As(err, &cerr),
		errors.As(err, &rerr), errors.As(err, &aerr):
		return true
	case errors.As(err, &oe):
		return oe.Op == "remote error" // crypto/tls's wrapping of an alert received
	}
	return false
}
