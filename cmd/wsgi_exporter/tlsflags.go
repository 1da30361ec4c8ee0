package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"

	"github.com/alecthomas/kingpin/v2"

	"github.com/wsgi-exporter/wsgi_exporter/internal/tlsconfig"
)

// tlsFlags are the --<kind>.ssl-* flags of a kind that reads https targets.
type tlsFlags struct {
	kind     string
	caFile   *string
	certFile *string
	keyFile  *string
	verify   *bool
}

// addTLSFlags adds --<kind>.ssl-ca-cert, -client-cert, -client-key and -verify; peer names
// the servers in the help texts ("nginx over https", "https:// stats servers").
func addTLSFlags(app *kingpin.Application, kind, peer string) *tlsFlags {
	return &tlsFlags{
		kind: kind,
		caFile: app.Flag(kind+".ssl-ca-cert",
			"PEM file of the CAs that sign the certificate of "+peer+"; default: the system roots.").
			PlaceHolder("FILE").String(),
		certFile: app.Flag(kind+".ssl-client-cert",
			"PEM client certificate presented to "+peer+" (needs --"+kind+".ssl-client-key).").
			PlaceHolder("FILE").String(),
		keyFile: app.Flag(kind+".ssl-client-key",
			"PEM key of --"+kind+".ssl-client-cert.").
			PlaceHolder("FILE").String(),
		verify: app.Flag(kind+".ssl-verify",
			"Verify the certificate of "+peer+". --no-"+kind+".ssl-verify accepts any certificate (insecure).").
			Default("true").Bool(),
	}
}

// config reads the files once, at start-up, and warns when verification is off.
func (f *tlsFlags) config(logger *slog.Logger) (*tls.Config, error) {
	cfg, err := tlsconfig.Options{
		CAFile: *f.caFile, CertFile: *f.certFile, KeyFile: *f.keyFile, SkipVerify: !*f.verify,
	}.Config()
	if err != nil {
		return nil, fmt.Errorf("--%s.ssl-* flags: %w", f.kind, err)
	}
	if !*f.verify {
		logger.Warn("--no-" + f.kind + ".ssl-verify: the TLS certificate of " + f.kind + " targets is not verified")
	}
	return cfg, nil
}
