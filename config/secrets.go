package config

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/wsgi-exporter/wsgi_exporter/internal/tlsconfig"
)

// maxSecretFile bounds a password file.
const maxSecretFile = 64 << 10

// readSecret reads a password file: its content without one trailing newline. Errors name
// the path and the system's reason, never the content.
func readSecret(path string) (Secret, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fileError(path, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return "", fileError(path, err)
	} else if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fileError(path, err)
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("%s is larger than %d bytes", path, maxSecretFile)
	}
	b = bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
	return Secret(b), nil
}

// fileError is the reason a file could not be read, with its path only.
func fileError(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", path, pe.Err)
	}
	return fmt.Errorf("%s: %w", path, err)
}

// load resolves the paths against dir and builds the TLS configuration (reading the files).
func (t *TLS) load(dir string) error {
	t.CAFile, t.CertFile, t.KeyFile = resolve(dir, t.CAFile), resolve(dir, t.CertFile), resolve(dir, t.KeyFile)
	cfg, err := tlsconfig.Options{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, SkipVerify: t.InsecureSkipVerify}.Config()
	if err != nil {
		return err
	}
	h := sha256.New()
	for _, p := range []string{t.CAFile, t.CertFile, t.KeyFile} {
		if p == "" {
			h.Write([]byte{0})
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return fileError(p, err)
		}
		h.Write(b)
	}
	t.config, t.sum = cfg, h.Sum(nil)
	return nil
}

// Config is the TLS configuration built at load; nil when the TLS block is absent.
func (t *TLS) Config() *tls.Config {
	if t == nil || t.config == nil {
		return nil
	}
	return t.config.Clone()
}
