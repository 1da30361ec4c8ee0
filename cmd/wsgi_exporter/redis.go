package main

import (
	"bytes"
	"fmt"
	"os"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/alecthomas/units"

	"github.com/wsgi-exporter/wsgi_exporter/collector"
	"github.com/wsgi-exporter/wsgi_exporter/redisstore"
)

// redisFlags are the flags of gunicorn-prometheus-exporter's Redis store (docs/redis.md).
type redisFlags struct {
	urls         *[]string
	prefix       *string
	passwordFile *string
	tls          *tlsFlags
	maxKeys      *int
	maxBytes     *units.Base2Bytes
	vanished     *string
	resume       *time.Duration
	urlLabel     *string
}

func init() {
	kinds = append(kinds, func(app *kingpin.Application) kindFlags {
		return &redisFlags{
			urls: app.Flag("redis.url",
				"Redis database written by gunicorn-prometheus-exporter (REDIS_ENABLED) to merge and serve: redis://[user@]host[:port][/db], rediss://… or unix:///path/to/socket[?db=N]; repeatable.").
				PlaceHolder("URL").Strings(),
			prefix: app.Flag("redis.key-prefix",
				"The application's REDIS_KEY_PREFIX (matched exactly; trailing colons dropped).").
				Default(redisstore.DefaultPrefix).String(),
			passwordFile: app.Flag("redis.password-file",
				"File holding the Redis password (one trailing newline is ignored); the URL's user name, if any, is the ACL user.").
				PlaceHolder("FILE").String(),
			tls: addTLSFlags(app, "redis", "Redis servers of rediss:// URLs"),
			maxKeys: app.Flag("redis.max-keys",
				"Most metric keys read from one database per scrape; more fails the scrape (reason too_large). Also caps the vanished entries kept.").
				Default("500000").Int(),
			maxBytes: app.Flag("redis.max-bytes",
				"Most bytes received from one database per scrape; more fails the scrape (reason too_large). 0: no limit.").
				Default("256MiB").Bytes(),
			vanished: app.Flag("redis.vanished",
				"Counter, histogram and summary entries whose keys expired or were deleted: keep their last values in the merge, as .db files keep them (keep), or drop them, as the Python sidecar does (drop).").
				Default("keep").Enum("keep", "drop"),
			resume: app.Flag("redis.resume-window",
				"How long a vanished entry is kept per worker, so that a worker writing again continues from its own value; after it the value is folded into its series.").
				Default("1h").Duration(),
			urlLabel: app.Flag("redis.url-label",
				"Add the redis_url label to the application's series: auto (only when more than one URL is configured), always, never.").
				Default("auto").Enum("auto", "always", "never"),
		}
	})
}

func (f *redisFlags) build(c common) ([]collector.Source, error) {
	if len(*f.urls) == 0 {
		return nil, nil
	}
	switch {
	case *f.maxKeys <= 0:
		return nil, fmt.Errorf("--redis.max-keys must be positive")
	case *f.maxBytes < 0:
		return nil, fmt.Errorf("--redis.max-bytes must not be negative")
	case *f.resume <= 0:
		return nil, fmt.Errorf("--redis.resume-window must be positive")
	case redisstore.CleanPrefix(*f.prefix) == "":
		return nil, fmt.Errorf("--redis.key-prefix must not be empty")
	}
	tlsCfg, err := f.tls.config(c.Logger)
	if err != nil {
		return nil, err
	}
	var password string
	if *f.passwordFile != "" {
		b, err := os.ReadFile(*f.passwordFile)
		if err != nil {
			return nil, fmt.Errorf("--redis.password-file: %w", err)
		}
		password = string(bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r")))
	}
	label := len(*f.urls) > 1
	switch *f.urlLabel {
	case "always":
		label = true
	case "never":
		label = false
	}
	redisstore.SetLogger(c.Logger)
	var out []collector.Source
	for _, u := range *f.urls {
		s, err := collector.NewMultiprocRedis(collector.Config{Timeout: c.Timeout}, collector.MultiprocRedisOptions{
			Target: redisstore.Target{URL: u, Password: password, TLS: tlsCfg, Timeout: c.Timeout},
			Options: redisstore.Options{
				Prefix:       *f.prefix,
				MaxKeys:      *f.maxKeys,
				MaxBytes:     int64(*f.maxBytes),
				DropVanished: *f.vanished == "drop",
				ResumeWindow: *f.resume,
			},
			URLLabel: label,
			Logger:   c.Logger,
		})
		if err != nil {
			return nil, fmt.Errorf("--redis.url: %w", err)
		}
		out = append(out, s)
	}
	return out, nil
}
