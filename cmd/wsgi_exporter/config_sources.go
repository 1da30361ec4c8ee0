package main

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/wsgi-exporter/wsgi_exporter/collector"
	"github.com/wsgi-exporter/wsgi_exporter/config"
	"github.com/wsgi-exporter/wsgi_exporter/multiproc"
	"github.com/wsgi-exporter/wsgi_exporter/redisstore"
)

// defaultMultiprocMaxBytes is --multiproc.max-bytes' default, for file entries that set none.
const defaultMultiprocMaxBytes = 1 << 30

// buildEnv is what building a source from the file needs besides its entry.
type buildEnv struct {
	Timeout time.Duration // --scrape.timeout: the default of global.timeout
	ProcFS  string        // --path.procfs
	Logger  *slog.Logger
	// Probe: the source serves one probe and is dropped after it (a multiprocess directory
	// is then read without keeping files mapped).
	Probe bool
}

// newKindSource builds a source of kind with the entry's (or module's) settings.
// dirLabel is whether a multiprocess directory or Redis store labels its application series
// with multiproc_dir or redis_url.
func newKindSource(kind string, st config.Settings, cfg collector.Config, env buildEnv, dirLabel bool) (collector.Source, error) {
	cfg.Kind = kind
	switch kind {
	case config.KindUWSGI:
		var opts collector.UWSGIOptions
		if u := st.UWSGI; u != nil {
			opts = collector.UWSGIOptions{MaxResponseSize: int64(u.MaxResponseSize), CollectCores: u.CollectCores, TLS: u.TLS.Config()}
		}
		return collector.NewUWSGI(cfg, opts)
	case config.KindNginx:
		var opts collector.NginxOptions
		if n := st.Nginx; n != nil {
			opts.TLS, opts.Host = n.TLS.Config(), n.HostHeader
			if n.BasicAuth != nil {
				opts.Username, opts.Password = n.BasicAuth.Username, n.BasicAuth.Password.Reveal()
			}
		}
		return collector.NewNginx(cfg, opts)
	case config.KindMultiproc:
		opts := fileMultiprocOptions(st.Multiproc, env)
		return collector.NewMultiproc(cfg, collector.MultiprocOptions{Options: opts, DirLabel: dirLabel, Logger: env.Logger})
	case config.KindGunicorn:
		if env.ProcFS == "" {
			return nil, fmt.Errorf("a gunicorn pidfile needs a proc filesystem: --path.procfs is empty")
		}
		return collector.NewGunicorn(cfg, collector.GunicornOptions{ProcFS: env.ProcFS})
	case config.KindMultiprocRedis:
		return newRedisSource(st.MultiprocRedis, cfg, env, dirLabel)
	case config.KindGunicornStatsd:
		var opts collector.GunicornStatsdOptions
		if g := st.GunicornStatsd; g != nil {
			opts = collector.GunicornStatsdOptions{TagLabels: g.TagLabels, MaxSeries: g.MaxSeries}
		}
		return collector.NewGunicornStatsd(cfg, opts)
	}
	return nil, fmt.Errorf("unknown kind %q", kind)
}

// fileMultiprocOptions are the reader options of a multiprocess directory of the file (or a
// probe): its settings, and the flags' defaults for what it does not set.
func fileMultiprocOptions(m *config.MultiprocSettings, env buildEnv) multiproc.Options {
	opts := multiproc.Options{MaxBytes: defaultMultiprocMaxBytes, ProcRoot: env.ProcFS,
		MaxFiles: multiproc.DefaultMaxFiles, MaxEntries: multiproc.DefaultMaxEntries, MaxSeries: multiproc.DefaultMaxSeries,
		MaxKeyLength: multiproc.DefaultMaxKeyLength, MaxKeyBytes: multiproc.DefaultMaxKeyBytes}
	if m != nil {
		if m.MaxBytes != nil {
			opts.MaxBytes = int64(*m.MaxBytes)
		}
		opts.DropDeadLiveGauges = m.DropDeadLiveGauges
		opts.NoMmap = m.Mmap != nil && !*m.Mmap
	}
	// A probe's source reads once and is dropped: no file kept mapped, nothing folded.
	opts.NoMmap = opts.NoMmap || env.Probe
	opts.NoStore = env.Probe
	return opts
}

// Defaults of the --redis.* flags, for file entries that set none.
const (
	defaultRedisMaxKeys  = 500000
	defaultRedisMaxBytes = 256 << 20
	defaultRedisResume   = time.Hour
)

// newRedisSource builds a Redis store source; urlLabel is whether its application series
// carry redis_url.
func newRedisSource(r *config.MultiprocRedisSettings, cfg collector.Config, env buildEnv, urlLabel bool) (collector.Source, error) {
	if r == nil {
		r = &config.MultiprocRedisSettings{}
	}
	opts := redisstore.Options{
		Prefix:       r.KeyPrefix,
		MaxKeys:      r.MaxKeys,
		MaxBytes:     defaultRedisMaxBytes,
		DropVanished: r.Vanished == "drop",
		ResumeWindow: config.EffectiveTimeout(r.ResumeWindow, defaultRedisResume),
	}
	if opts.MaxKeys == 0 {
		opts.MaxKeys = defaultRedisMaxKeys
	}
	if r.MaxBytes != nil {
		opts.MaxBytes = int64(*r.MaxBytes)
	}
	return collector.NewMultiprocRedis(cfg, collector.MultiprocRedisOptions{
		Target:   redisstore.Target{URL: cfg.Address, Password: r.Password.Reveal(), TLS: r.TLS.Config(), Timeout: cfg.Timeout},
		Options:  opts,
		URLLabel: urlLabel,
		Logger:   env.Logger,
	})
}

// fileSourceConfig is the collector configuration of a file entry.
func fileSourceConfig(f *config.File, s *config.Source, env buildEnv) collector.Config {
	def := config.EffectiveTimeout(f.Global.Timeout, env.Timeout)
	return collector.Config{
		Kind:    s.Kind,
		Name:    s.Name,
		Address: s.Address,
		Labels:  s.Labels,
		Timeout: config.EffectiveTimeout(s.Timeout, def),
	}
}

// appLabel decides whether a file entry's application series carry the multiproc_dir or
// redis_url label: auto labels when more than one source of the kind is configured, by the
// file and the flags together.
func appLabel(s *config.Source, total int) bool {
	choice := ""
	switch {
	case s.Multiproc != nil:
		choice = s.Multiproc.DirLabel
	case s.MultiprocRedis != nil:
		choice = s.MultiprocRedis.URLLabel
	}
	switch choice {
	case "always":
		return true
	case "never":
		return false
	}
	return total > 1
}

// placed is a configured source and where it was configured: a flag or file:line.
type placed struct {
	src   collector.Source
	where string
}

// kindFlag names the flag that configures sources of a kind, for messages.
var kindFlag = map[string]string{
	config.KindUWSGI:          "--uwsgi.stats-uri",
	config.KindNginx:          "--nginx.scrape-uri",
	config.KindMultiproc:      "--multiproc.dir",
	config.KindGunicorn:       "--gunicorn.pidfile",
	config.KindGunicornStatsd: "--gunicorn.statsd-listen-address",
	config.KindMultiprocRedis: "--redis.url",
}

// flagPlace names the flag a flag source came from.
func flagPlace(s collector.Source) string {
	if f, ok := kindFlag[s.Kind().Name]; ok {
		return f + "=" + s.Config().Address
	}
	return "a flag"
}

// sourceKey is the identity of the target a source reads (config.SourceKey); relative paths
// given by flags count from the working directory.
func sourceKey(s collector.Source) string {
	kind, addr := s.Kind().Name, s.Config().Address
	if (kind == config.KindMultiproc || kind == config.KindGunicorn) && !filepath.IsAbs(addr) {
		if abs, err := filepath.Abs(addr); err == nil {
			addr = abs
		}
	}
	// The address is the shown one (query values hidden): so is the key.
	key, _, err := config.SourceKey(kind, addr)
	if err != nil {
		return kind + " " + addr
	}
	return key
}

// checkDuplicates refuses one target, or one kind and name, configured twice, naming both
// places (flag or file:line).
func checkDuplicates(all []placed) error {
	byKey := map[string]placed{}
	byName := map[string]placed{}
	for _, p := range all {
		key := sourceKey(p.src)
		if prev, ok := byKey[key]; ok {
			return fmt.Errorf("%s is configured twice: by %s and by %s: give each source once", key, prev.where, p.where)
		}
		byKey[key] = p
		name := p.src.Kind().Name + "\x00" + p.src.Config().SourceName()
		if prev, ok := byName[name]; ok {
			return fmt.Errorf("two %s sources are named %q: by %s and by %s: give each a distinct name", p.src.Kind().Name, p.src.Config().SourceName(), prev.where, p.where)
		}
		byName[name] = p
	}
	return nil
}
