// Package config reads the exporter's configuration file (--config.file): named sources of
// every kind with their own labels, timeouts and settings, and the probe modules that
// /probe scrapes ad-hoc targets with, each with the allow-list its targets must pass.
//
// Decoding is strict: an unknown or repeated key is an error that names the file and line.
// Secrets come only from files (password_file), read at every load; their content never
// appears in an error, a log line or a page. The package does not build sources: it returns
// checked definitions that cmd/wsgi_exporter turns into collector sources.
package config

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"regexp"
	"time"
)

// File is a parsed and checked configuration file.
type File struct {
	Global  Global             `yaml:"global"`
	Sources []*Source          `yaml:"sources"`
	Modules map[string]*Module `yaml:"modules"`

	// Path is the file as given to Load (or the name given to Parse).
	Path string `yaml:"-"`
}

// Global holds the defaults of the file's sources and modules.
type Global struct {
	// Timeout is the deadline of a scrape when Prometheus announces none, for the sources and
	// modules that set no timeout of their own. 0: the --scrape.timeout flag's value.
	Timeout Duration `yaml:"timeout"`
}

// Source is one named source of the file.
type Source struct {
	Kind     string            `yaml:"kind"`
	Name     string            `yaml:"name"`    // value of the kind's source label; default: the address
	Address  string            `yaml:"address"` // in the kind's address syntax
	Labels   map[string]string `yaml:"labels"`  // constant labels on every series of the source
	Timeout  Duration          `yaml:"timeout"` // 0: global.timeout, then --scrape.timeout
	Settings `yaml:",inline"`

	// Line is the line of the source's entry in the file.
	Line int `yaml:"-"`
	// Key identifies the target read, whatever the spelling of the address (see SourceKey).
	Key      string `yaml:"-"`
	shownKey string // Key with query values hidden, for errors
	file     string
}

// Where names the source's place: file:line.
func (s *Source) Where() string { return fmt.Sprintf("%s:%d", s.file, s.Line) }

// Module is a probe module: the kind and settings /probe?module=NAME scrapes a target with,
// and the allow-list the target must pass.
type Module struct {
	Kind     string   `yaml:"kind"`
	Timeout  Duration `yaml:"timeout"` // caps the probe's deadline; 0: the request's, else global.timeout
	Settings `yaml:",inline"`
	Allow    AllowList `yaml:"allow"`

	Name string `yaml:"-"`
	Line int    `yaml:"-"`
	file string
}

// Where names the module's place: file:line.
func (m *Module) Where() string { return fmt.Sprintf("%s:%d", m.file, m.Line) }

// Settings are the kind's own settings of a source or module: at most one block, the one of
// its kind.
type Settings struct {
	UWSGI          *UWSGISettings          `yaml:"uwsgi"`
	Nginx          *NginxSettings          `yaml:"nginx"`
	Multiproc      *MultiprocSettings      `yaml:"multiproc"`
	GunicornStatsd *GunicornStatsdSettings `yaml:"gunicorn_statsd"`
	MultiprocRedis *MultiprocRedisSettings `yaml:"multiproc_redis"`
}

// UWSGISettings are the settings of a uWSGI stats source (--uwsgi.* flags).
type UWSGISettings struct {
	MaxResponseSize Bytes `yaml:"max_response_size"` // 0: 32MiB
	CollectCores    bool  `yaml:"collect_cores"`
	TLS             *TLS  `yaml:"tls"`
}

// NginxSettings are the settings of an nginx stub_status source (--nginx.* flags).
type NginxSettings struct {
	HostHeader string     `yaml:"host_header"`
	BasicAuth  *BasicAuth `yaml:"basic_auth"`
	TLS        *TLS       `yaml:"tls"`
}

// BasicAuth is HTTP basic authentication; the password comes only from a file.
type BasicAuth struct {
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"` // relative paths are relative to the file's directory
	// Password is PasswordFile's content without one trailing newline, read at load.
	Password Secret `yaml:"-"`
}

// TLS is the client TLS configuration toward an https target. Relative paths are relative to
// the file's directory.
type TLS struct {
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`

	config *tls.Config // built at load
	sum    []byte      // hash of the files' content, for Fingerprint
}

// MultiprocSettings are the settings of a multiprocess directory (--multiproc.* flags).
type MultiprocSettings struct {
	MaxBytes           *Bytes `yaml:"max_bytes"` // nil: 1GiB; 0: no limit
	DropDeadLiveGauges bool   `yaml:"drop_dead_live_gauges"`
	Mmap               *bool  `yaml:"mmap"`      // nil: true
	DirLabel           string `yaml:"dir_label"` // auto (default), always, never
}

// GunicornStatsdSettings are the settings of a statsd listener (--gunicorn.statsd-* flags).
type GunicornStatsdSettings struct {
	TagLabels []string `yaml:"tag_labels"`
	MaxSeries int      `yaml:"max_series"` // 0: 16
}

// MultiprocRedisSettings are the settings of a gunicorn-prometheus-exporter Redis store
// (--redis.* flags).
type MultiprocRedisSettings struct {
	KeyPrefix    string   `yaml:"key_prefix"`    // "": gunicorn
	PasswordFile string   `yaml:"password_file"` // relative paths are relative to the file's directory
	TLS          *TLS     `yaml:"tls"`
	MaxKeys      int      `yaml:"max_keys"`      // 0: 500000
	MaxBytes     *Bytes   `yaml:"max_bytes"`     // nil: 256MiB; 0: no limit
	Vanished     string   `yaml:"vanished"`      // keep (default) or drop
	ResumeWindow Duration `yaml:"resume_window"` // 0: 1h
	URLLabel     string   `yaml:"url_label"`     // auto (default), always, never
	// Password is PasswordFile's content without one trailing newline, read at load.
	Password Secret `yaml:"-"`
}

// The kinds a file may name. A new kind is added here, to Settings and to check.
const (
	KindUWSGI          = "uwsgi"
	KindNginx          = "nginx"
	KindMultiproc      = "multiproc"
	KindGunicorn       = "gunicorn"
	KindGunicornStatsd = "gunicorn_statsd"
	KindMultiprocRedis = "multiproc_redis"
)

// Kinds lists the kinds a source may have, in the order of the documentation.
var Kinds = []string{KindUWSGI, KindNginx, KindMultiproc, KindGunicorn, KindGunicornStatsd, KindMultiprocRedis}

// ProbeKinds lists the kinds a module may have. A statsd listener receives datagrams instead
// of reading a target: it cannot be probed.
var ProbeKinds = []string{KindUWSGI, KindNginx, KindMultiproc, KindGunicorn, KindMultiprocRedis}

// moduleName is what a module may be called: it is a URL parameter and a label value.
var moduleName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// EffectiveTimeout is t, else def.
func EffectiveTimeout(t Duration, def time.Duration) time.Duration {
	if t > 0 {
		return time.Duration(t)
	}
	return def
}

// Fingerprint changes whenever anything the source is built from changes: its definition,
// and the content of the files it names (password, TLS). A reload keeps the running source
// of an unchanged fingerprint.
func (s *Source) Fingerprint() string {
	h := sha256.New()
	h.Write(dump(s))
	var tlsBlocks []*TLS
	switch {
	case s.UWSGI != nil:
		tlsBlocks = append(tlsBlocks, s.UWSGI.TLS)
	case s.Nginx != nil:
		tlsBlocks = append(tlsBlocks, s.Nginx.TLS)
		if s.Nginx.BasicAuth != nil {
			pw := sha256.Sum256([]byte(s.Nginx.BasicAuth.Password.Reveal()))
			h.Write(pw[:])
		}
	case s.MultiprocRedis != nil:
		tlsBlocks = append(tlsBlocks, s.MultiprocRedis.TLS)
		pw := sha256.Sum256([]byte(s.MultiprocRedis.Password.Reveal()))
		h.Write(pw[:])
	}
	for _, t := range tlsBlocks {
		if t != nil {
			h.Write(t.sum)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}
