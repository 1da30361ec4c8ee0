package redisstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// Target is a Redis server to read and how to log in to it.
type Target struct {
	// URL is redis://[user@]host[:port][/db], rediss://… (TLS) or
	// unix:///path/to/socket[?db=N]. A password in it is refused: it belongs in Password.
	URL string
	// Password for AUTH (with the URL's user name, if any, as ACL user).
	Password string
	// TLS is the client configuration for rediss:// URLs (nil: the system roots). The URL's
	// host name is the server name unless TLS sets one.
	TLS *tls.Config
	// Timeout bounds each dial, read and write when the caller's context has no deadline.
	Timeout time.Duration
}

// target is a parsed Target.
type target struct {
	redacted string
	opts     *redis.Options
}

// Redact returns the URL without its user information (user name and password): what
// labels and logs show. A URL that does not parse is shown as fetch.Redact shows an address.
// The query (only db=N is accepted) is kept: it tells two databases of one socket apart.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return fetch.Redact(raw)
	}
	u.User = nil
	return u.String()
}

// parseTarget checks the URL and builds the client options. Its errors never hold the URL's
// user information.
func parseTarget(t Target) (*target, error) {
	u, err := url.Parse(t.URL)
	if err != nil {
		// url.Error repeats the whole URL, password included: leave it out.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%s: invalid redis URL: %v", fetch.Redact(t.URL), err)
	}
	var user string
	if u.User != nil {
		user = u.User.Username()
		if _, set := u.User.Password(); set {
			// The project's rule for addresses: no secret in them (it would be in the
			// process list and the configuration).
			return nil, fmt.Errorf("%s: a password in the URL is refused: give it in a file (--redis.password-file)", fetch.Redact(t.URL))
		}
	}
	password := t.Password
	clean := *u
	clean.User = nil
	redacted := clean.String()
	shown := fetch.Redact(t.URL) // in errors: a refused query may hold a secret
	opts := &redis.Options{}
	switch u.Scheme {
	case "redis", "rediss":
		if u.Host == "" {
			return nil, fmt.Errorf("%s: no host", shown)
		}
		if u.RawQuery != "" {
			return nil, fmt.Errorf("%s: no query options are understood in redis:// URLs (the database is the path: /N)", shown)
		}
		port := u.Port()
		if port == "" {
			port = "6379"
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return nil, fmt.Errorf("%s: invalid port %q", shown, port)
		}
		opts.Network, opts.Addr = "tcp", net.JoinHostPort(u.Hostname(), port)
		db := strings.Trim(u.Path, "/")
		if db != "" {
			if opts.DB, err = parseDB(db); err != nil {
				return nil, fmt.Errorf("%s: %w", shown, err)
			}
		}
		if u.Scheme == "rediss" {
			cfg := &tls.Config{MinVersion: tls.VersionTLS12}
			if t.TLS != nil {
				cfg = t.TLS.Clone()
			}
			if cfg.ServerName == "" {
				cfg.ServerName = u.Hostname()
			}
			opts.TLSConfig = cfg
		}
	case "unix":
		path := u.Path
		if u.Host != "" || path == "" {
			return nil, fmt.Errorf("%s: want unix:///absolute/path/to/socket[?db=N]", shown)
		}
		q := u.Query()
		for k := range q {
			if k != "db" {
				return nil, fmt.Errorf("%s: unknown option %q (only db=N is understood)", shown, k)
			}
		}
		if db := q.Get("db"); db != "" {
			if opts.DB, err = parseDB(db); err != nil {
				return nil, fmt.Errorf("%s: %w", shown, err)
			}
		}
		opts.Network, opts.Addr = "unix", path
	default:
		return nil, fmt.Errorf("%s: the scheme must be redis, rediss or unix", shown)
	}
	opts.Username, opts.Password = user, password
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	// One connection serves a read; a second one lets a read start while a timed-out one
	// is torn down. Retries are few: every read runs under the scrape's deadline.
	opts.PoolSize = 2
	opts.PipelinePoolSize = -1
	opts.MaxRetries = 1
	opts.DialerRetries = 1
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = timeout, timeout, timeout
	opts.ContextTimeoutEnabled = true
	opts.ConnMaxIdleTime = 5 * time.Minute
	// RESP2: every Redis since 2.x speaks it; nothing here needs RESP3.
	opts.Protocol = 2
	opts.DisableIdentity = true
	opts.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return &target{redacted: redacted, opts: opts}, nil
}

func parseDB(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid database number %q", s)
	}
	return n, nil
}

// dialer dials the server and counts what is read from the connection against b.
func dialer(opts *redis.Options, b *budget) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 5 * time.Minute}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if opts.TLSConfig != nil {
			tc := tls.Client(c, opts.TLSConfig)
			if err := tc.HandshakeContext(ctx); err != nil {
				c.Close()
				return nil, err
			}
			return &countedConn{Conn: tc, b: b}, nil
		}
		if sc, ok := c.(sysConn); ok {
			// The pool checks idle plain connections for a closed peer through
			// SyscallConn before reusing them.
			return &countedSysConn{countedConn{Conn: c, b: b}, sc}, nil
		}
		return &countedConn{Conn: c, b: b}, nil
	}
}
