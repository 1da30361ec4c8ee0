package nginx

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// TLSOptions are the TLS settings toward https targets.
type TLSOptions struct {
	CAFile     string // PEM bundle of CAs to trust instead of the system roots; empty: system roots
	CertFile   string // client certificate (PEM); needs KeyFile
	KeyFile    string // client key (PEM); needs CertFile
	SkipVerify bool   // accept any server certificate (insecure)
}

// Config reads the files once and returns the TLS configuration. Verification is on unless
// SkipVerify is set.
func (o TLSOptions) Config() (*tls.Config, error) {
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
