package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"

	"github.com/alecthomas/kingpin/v2"

	"github.com/wsgi-exporter/wsgi_exporter/collector"
	"github.com/wsgi-exporter/wsgi_exporter/nginx"
)

// nginxFlags are the flags of the nginx stub_status sources.
type nginxFlags struct {
	scrapeURIs   *[]string
	tls          *tlsFlags
	authUser     *string
	passwordFile *string
	hostHeader   *string
}

func init() {
	kinds = append(kinds, func(app *kingpin.Application) kindFlags {
		return &nginxFlags{
			scrapeURIs: app.Flag("nginx.scrape-uri",
				"nginx stub_status page to scrape (repeatable): http://host:port/path, https://…, unix:/socket.sock:/path (nginx-prometheus-exporter's form) or unix:///socket/path?path=/request/path (any socket path, ':' included).").
				PlaceHolder("URI").Strings(),
			tls: addTLSFlags(app, "nginx", "nginx over https"),
			authUser: app.Flag("nginx.basic-auth-user",
				"User for HTTP basic auth toward nginx (needs --nginx.basic-auth-password-file).").
				PlaceHolder("USER").String(),
			passwordFile: app.Flag("nginx.basic-auth-password-file",
				"File holding the basic auth password (one trailing newline is ignored).").
				PlaceHolder("FILE").String(),
			hostHeader: app.Flag("nginx.host-header",
				"Host header sent to nginx (and TLS server name for https), e.g. to reach the virtual host that serves stub_status.").
				PlaceHolder("HOST").String(),
		}
	})
}

func (f *nginxFlags) build(c common) ([]collector.Source, error) {
	if len(*f.scrapeURIs) == 0 {
		return nil, nil
	}
	opts, err := f.options(c.Logger)
	if err != nil {
		return nil, err
	}
	var out []collector.Source
	seen := map[string]string{} // canonical target -> URI as given
	for _, uri := range *f.scrapeURIs {
		s, err := collector.NewNginx(collector.Config{Address: uri, Timeout: c.Timeout}, opts)
		if err != nil {
			return nil, fmt.Errorf("--nginx.scrape-uri: %w", err)
		}
		target, _ := collector.NginxTarget(s)
		if prev, ok := seen[target]; ok {
			// Shown redacted: a query value may be a token.
			return nil, fmt.Errorf("--nginx.scrape-uri: %q and %q are the same page (%s): give each page once",
				nginx.SourceName(prev), nginx.SourceName(uri), nginx.SourceName(target))
		}
		seen[target] = uri
		out = append(out, s)
	}
	return out, nil
}

// options reads the TLS and password files once, at start-up.
func (f *nginxFlags) options(logger *slog.Logger) (collector.NginxOptions, error) {
	var opts collector.NginxOptions
	tlsCfg, err := f.tls.config(logger)
	if err != nil {
		return opts, err
	}
	opts.TLS = tlsCfg
	opts.Host = *f.hostHeader
	switch {
	case *f.authUser != "" && *f.passwordFile != "":
		b, err := os.ReadFile(*f.passwordFile)
		if err != nil {
			return opts, fmt.Errorf("--nginx.basic-auth-password-file: %w", err)
		}
		b = bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
		opts.Username, opts.Password = *f.authUser, string(b)
	case *f.authUser != "":
		return opts, fmt.Errorf("--nginx.basic-auth-user needs --nginx.basic-auth-password-file")
	case *f.passwordFile != "":
		return opts, fmt.Errorf("--nginx.basic-auth-password-file needs --nginx.basic-auth-user")
	}
	return opts, nil
}
