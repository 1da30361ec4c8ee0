package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/wsgi-exporter/wsgi_exporter/gunicorn"
	"github.com/wsgi-exporter/wsgi_exporter/nginx"
	"github.com/wsgi-exporter/wsgi_exporter/redisstore"
	"github.com/wsgi-exporter/wsgi_exporter/uwsgi"
)

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// check validates the decoded file, reads the files it names, and reports every problem.
func (f *File) check(p *problems) {
	dir := filepath.Dir(f.Path)
	byKey := map[string]*Source{}
	byName := map[string]*Source{}
	for i, s := range f.Sources {
		if s == nil {
			p.add(0, "sources[%d] is empty", i)
			continue
		}
		where := fmt.Sprintf("sources[%d]", i)
		if !s.checkSource(p, where, dir) {
			continue
		}
		if prev, ok := byKey[s.Key]; ok {
			p.add(s.Line, "%s: %s is already configured at %s: give each source once", where, s.shownKey, prev.Where())
			continue
		}
		byKey[s.Key] = s
		nameKey := s.Kind + "\x00" + s.SourceName()
		if prev, ok := byName[nameKey]; ok {
			p.add(s.Line, "%s: a %s source named %q is already configured at %s: give each a distinct name", where, s.Kind, s.SourceName(), prev.Where())
			continue
		}
		byName[nameKey] = s
	}
	for _, name := range sortedKeys(f.Modules) {
		m := f.Modules[name]
		if m == nil {
			p.add(0, "modules.%s is empty", name)
			continue
		}
		m.checkModule(p, dir)
	}
}

// SourceName is the value of the source label: the name, or the address with what may be a
// secret hidden (a query value of a uWSGI or nginx URL), as the source shows it.
func (s *Source) SourceName() string {
	switch {
	case s.Name != "":
		return s.Name
	case s.Kind == KindUWSGI:
		return uwsgi.SourceName(s.Address)
	case s.Kind == KindNginx:
		return nginx.SourceName(s.Address)
	}
	return s.Address
}

// checkSource checks one source and reads the files it names; false when it is unusable.
func (s *Source) checkSource(p *problems, where, dir string) bool {
	ok := true
	bad := func(format string, args ...any) {
		p.add(s.Line, where+": "+format, args...)
		ok = false
	}
	if !slices.Contains(Kinds, s.Kind) {
		if s.Kind == "" {
			bad("kind is missing (one of %s)", strings.Join(Kinds, ", "))
		} else {
			bad("unknown kind %q (one of %s)", s.Kind, strings.Join(Kinds, ", "))
		}
		return false
	}
	if s.Address == "" {
		bad("address is missing")
		return false
	}
	key, shown, err := SourceKey(s.Kind, s.Address)
	if err != nil {
		bad("%v", err)
	}
	s.Key, s.shownKey = key, shown
	if !utf8.ValidString(s.Name) {
		bad("the name is not valid UTF-8")
	}
	for _, n := range sortedKeys(s.Labels) {
		if !labelName.MatchString(n) || strings.HasPrefix(n, "__") {
			bad("%q is not a valid label name", n)
		}
		if !utf8.ValidString(s.Labels[n]) {
			bad("the value of label %q is not valid UTF-8", n)
		}
	}
	if err := s.Settings.check(s.Kind, dir); err != nil {
		bad("%v", err)
	}
	return ok
}

// checkModule checks one module, its allow-list and the files it names.
func (m *Module) checkModule(p *problems, dir string) {
	where := "modules." + m.Name
	bad := func(format string, args ...any) { p.add(m.Line, where+": "+format, args...) }
	if !moduleName.MatchString(m.Name) {
		bad("a module name is 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit")
	}
	if !slices.Contains(ProbeKinds, m.Kind) {
		switch {
		case m.Kind == "":
			bad("kind is missing (one of %s)", strings.Join(ProbeKinds, ", "))
		case m.Kind == KindGunicornStatsd:
			bad("a %s listener receives datagrams: it cannot be probed (configure it as a source)", m.Kind)
		default:
			bad("unknown kind %q (one of %s)", m.Kind, strings.Join(ProbeKinds, ", "))
		}
		return
	}
	if err := m.Settings.check(m.Kind, dir); err != nil {
		bad("%v", err)
	}
	if err := m.Allow.compile(m.Kind); err != nil {
		bad("allow: %v", err)
	}
}

// SourceKey is the identity of the target a source of kind reads at address, whatever the
// spelling: two sources with one key read the same thing. shown is the key as errors show
// it, with the query values of a URL hidden (they may hold a token).
func SourceKey(kind, address string) (key, shown string, err error) {
	switch kind {
	case KindUWSGI:
		a, err := uwsgi.ParseAddress(address)
		if err != nil {
			return "", "", err
		}
		return kind + " " + a.String(), kind + " " + a.Redacted(), nil
	case KindNginx:
		t, err := nginx.ParseAddress(address)
		if err != nil {
			return "", "", err
		}
		return kind + " " + t.String(), kind + " " + t.Redacted(), nil
	case KindMultiproc, KindGunicorn:
		what := map[string]string{KindMultiproc: "multiprocess directory", KindGunicorn: "pidfile"}[kind]
		if !filepath.IsAbs(address) {
			return "", "", fmt.Errorf("the %s %q must be an absolute path", what, address)
		}
		if strings.ContainsRune(address, 0) {
			return "", "", fmt.Errorf("the %s path contains a NUL byte", what)
		}
		key = kind + " " + filepath.Clean(address)
		return key, key, nil
	case KindMultiprocRedis:
		u, err := parseRedisURL(address)
		if err != nil {
			return "", "", err
		}
		u.User = nil
		key = kind + " " + u.String()
		return key, key, nil
	case KindGunicornStatsd:
		network, addr, err := gunicorn.ParseListenAddress(address)
		if err != nil {
			return "", "", err
		}
		if network == "unixgram" {
			addr = filepath.Clean(addr)
		}
		key = kind + " " + network + "://" + addr
		return key, key, nil
	}
	return "", "", fmt.Errorf("unknown kind %q", kind)
}

// check checks the settings blocks against the kind and reads the files they name.
func (st *Settings) check(kind, dir string) error {
	given := map[string]bool{
		KindUWSGI:          st.UWSGI != nil,
		KindNginx:          st.Nginx != nil,
		KindMultiproc:      st.Multiproc != nil,
		KindGunicornStatsd: st.GunicornStatsd != nil,
		KindMultiprocRedis: st.MultiprocRedis != nil,
	}
	for _, k := range sortedKeys(given) {
		if given[k] && k != kind {
			return fmt.Errorf("a %s block in a %s entry: only the block of the entry's kind is allowed", k, kind)
		}
	}
	switch {
	case st.UWSGI != nil:
		if st.UWSGI.TLS != nil {
			if err := st.UWSGI.TLS.load(dir); err != nil {
				return fmt.Errorf("uwsgi.tls: %w", err)
			}
		}
	case st.Nginx != nil:
		if st.Nginx.TLS != nil {
			if err := st.Nginx.TLS.load(dir); err != nil {
				return fmt.Errorf("nginx.tls: %w", err)
			}
		}
		if a := st.Nginx.BasicAuth; a != nil {
			switch {
			case a.Username == "":
				return fmt.Errorf("nginx.basic_auth: username is missing")
			case a.PasswordFile == "":
				return fmt.Errorf("nginx.basic_auth: password_file is missing")
			}
			pw, err := readSecret(resolve(dir, a.PasswordFile))
			if err != nil {
				return fmt.Errorf("nginx.basic_auth.password_file: %w", err)
			}
			a.Password = pw
		}
	case st.Multiproc != nil:
		if !slices.Contains([]string{"", "auto", "always", "never"}, st.Multiproc.DirLabel) {
			return fmt.Errorf("multiproc.dir_label must be auto, always or never")
		}
	case st.MultiprocRedis != nil:
		r := st.MultiprocRedis
		switch {
		case r.MaxKeys < 0:
			return fmt.Errorf("multiproc_redis.max_keys must not be negative")
		case !slices.Contains([]string{"", "keep", "drop"}, r.Vanished):
			return fmt.Errorf("multiproc_redis.vanished must be keep or drop")
		case !slices.Contains([]string{"", "auto", "always", "never"}, r.URLLabel):
			return fmt.Errorf("multiproc_redis.url_label must be auto, always or never")
		case r.KeyPrefix != "" && strings.Trim(r.KeyPrefix, ":") == "":
			return fmt.Errorf("multiproc_redis.key_prefix must not be only colons")
		}
		if r.TLS != nil {
			if err := r.TLS.load(dir); err != nil {
				return fmt.Errorf("multiproc_redis.tls: %w", err)
			}
		}
		if r.PasswordFile != "" {
			pw, err := readSecret(resolve(dir, r.PasswordFile))
			if err != nil {
				return fmt.Errorf("multiproc_redis.password_file: %w", err)
			}
			r.Password = pw
		}
	case st.GunicornStatsd != nil:
		if st.GunicornStatsd.MaxSeries < 0 {
			return fmt.Errorf("gunicorn_statsd.max_series must not be negative")
		}
		for _, l := range st.GunicornStatsd.TagLabels {
			if !labelName.MatchString(l) || strings.HasPrefix(l, "__") {
				return fmt.Errorf("gunicorn_statsd.tag_labels: %q is not a valid label name", l)
			}
		}
	}
	return nil
}

// resolve makes a path the file names relative to the file's directory.
func resolve(dir, path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(dir, path)
}

// parseRedisURL checks a Redis store URL as far as the allow-list and the duplicate check
// need (the store's constructor checks the rest): redis:// or rediss:// with a host, or
// unix:// with an absolute socket path; no password. Errors never show the user information.
func parseRedisURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: invalid redis URL", redisstore.Redact(raw))
	}
	if _, set := u.User.Password(); set {
		return nil, fmt.Errorf("%s: a password in the URL is refused: give it in a file (password_file)", redisstore.Redact(raw))
	}
	switch u.Scheme {
	case "redis", "rediss":
		if u.Hostname() == "" {
			return nil, fmt.Errorf("%s: no host", redisstore.Redact(raw))
		}
	case "unix":
		if u.Host != "" || !strings.HasPrefix(u.Path, "/") {
			return nil, fmt.Errorf("%s: want unix:///absolute/path/to/socket[?db=N]", redisstore.Redact(raw))
		}
		u.Path = filepath.Clean(u.Path)
	default:
		return nil, fmt.Errorf("%s: the scheme must be redis, rediss or unix", redisstore.Redact(raw))
	}
	return u, nil
}
