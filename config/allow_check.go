package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
	"github.com/wsgi-exporter/wsgi_exporter/nginx"
	"github.com/wsgi-exporter/wsgi_exporter/uwsgi"
)

// Admitted is a probe target the allow-list let through.
type Admitted struct {
	// Address is what to read, in the kind's address syntax: the target as given for a
	// network target; for a unix socket or a directory, the socket or directory opened
	// already (a /proc/self/fd path to it), and for a file its directory opened already and
	// the file's name in it, so that nothing can be swapped in between the check and the
	// read (without /proc: the path with every symlink resolved).
	Address string
	// Err, when set, is why the target cannot be read although it is allowed (it does not
	// exist): the probe reports it as the scrape's failure without reading anything.
	Err error

	fd int // the pinned socket or directory; -1: none
}

// Close releases the pinned socket, if any. Call it once the probe has ended.
func (a *Admitted) Close() {
	if a != nil && a.fd >= 0 {
		_ = unix.Close(a.fd)
		a.fd = -1
	}
}

// Check decides whether the module may read target. The error is a *RefusedError (the
// allow-list refuses it) or a *TargetError (it is not a target of the module's kind).
// Paths are resolved against the file system now: call Check for every probe.
func (m *Module) Check(target string) (*Admitted, error) {
	if target == "" {
		return nil, badTarget("no target given")
	}
	a := &m.Allow
	switch m.Kind {
	case KindUWSGI:
		addr, err := uwsgi.ParseAddress(target)
		if err != nil {
			return nil, badTarget("%v", err)
		}
		switch addr.Transport {
		case uwsgi.TCP:
			host, port, err := splitPort(addr.Host)
			if err != nil {
				return nil, err
			}
			return admitNet(target, a.allowsHostPort(host, port))
		case uwsgi.HTTP:
			host, port, err := urlHostPort(addr.URL)
			if err != nil {
				return nil, err
			}
			return admitNet(target, a.allowsHostPort(host, port))
		case uwsgi.Unix:
			if addr.IsGlob() {
				return nil, badTarget("a probe reads one target: a glob is not accepted")
			}
			return admitSocket(a.UnixSockets, addr.Path, func(p string) string { return "unix://" + p })
		case uwsgi.File:
			if len(a.Files) == 0 {
				return nil, refused(RefusedScheme, "the module allows no file:// target")
			}
			ad, err := admitPath(a.Files, addr.Path, false)
			if ad != nil && ad.Err == nil {
				ad.Address = "file://" + ad.Address
			}
			return ad, err
		}
	case KindNginx:
		t, err := nginx.ParseAddress(target)
		if err != nil {
			return nil, badTarget("%v", err)
		}
		if t.Socket != "" {
			return admitSocket(a.UnixSockets, t.Socket, func(p string) string {
				return nginx.Target{URL: t.URL, Socket: p}.String()
			})
		}
		host, port, err := urlHostPort(t.URL.String())
		if err != nil {
			return nil, err
		}
		return admitNet(target, a.allowsHostPort(host, port))
	case KindMultiprocRedis:
		u, err := parseRedisURL(target)
		if err != nil {
			return nil, badTarget("%v", err)
		}
		if u.Scheme == "unix" {
			return admitSocket(a.UnixSockets, u.Path, func(p string) string {
				v := *u
				v.Path = p
				return v.String()
			})
		}
		port := 6379
		if p := u.Port(); p != "" {
			if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
				return nil, badTarget("bad port %q", p)
			}
		}
		return admitNet(target, a.allowsHostPort(u.Hostname(), port))
	case KindMultiproc, KindGunicorn:
		if !filepath.IsAbs(target) || strings.ContainsRune(target, 0) {
			return nil, badTarget("the target must be an absolute path")
		}
		return admitPath(a.Paths, target, m.Kind == KindMultiproc)
	}
	return nil, badTarget("a %s module cannot probe", m.Kind)
}

func admitNet(target string, err error) (*Admitted, error) {
	if err != nil {
		return nil, err
	}
	return &Admitted{Address: target, fd: -1}, nil
}

// splitPort splits host:port; the host must not be empty (an empty host dials the local
// machine).
func splitPort(hostport string) (string, int, error) {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, badTarget("%q: %v", hostport, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, badTarget("%q: bad port", hostport)
	}
	if host == "" {
		return "", 0, badTarget("%q: no host", hostport)
	}
	return host, port, nil
}

// urlHostPort is the host and port an http(s) URL connects to.
func urlHostPort(raw string) (string, int, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", 0, badTarget("%v", err)
	}
	host := u.Hostname()
	if host == "" {
		return "", 0, badTarget("the URL has no host")
	}
	p := u.Port()
	if p == "" {
		switch u.Scheme {
		case "http":
			p = "80"
		case "https":
			p = "443"
		default:
			return "", 0, badTarget("unsupported scheme %q", u.Scheme)
		}
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, badTarget("bad port %q", p)
	}
	return host, port, nil
}

// under reports whether clean path p is dir or below it.
func under(p, dir string) bool {
	if dir == "/" {
		return true
	}
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// resolveUnder checks path against dirs, lexically and then with every symlink resolved,
// and returns the resolved path. A path that does not exist (or cannot be resolved) is
// returned with resolveErr set.
func resolveUnder(dirs []string, path string) (resolved string, resolveErr, err error) {
	clean := filepath.Clean(path)
	lexical := false
	for _, d := range dirs {
		if under(clean, d) {
			lexical = true
			break
		}
	}
	if !lexical {
		return "", nil, refused(RefusedPath, "%s is not below the module's directories", clean)
	}
	resolved, rerr := filepath.EvalSymlinks(clean)
	if rerr != nil {
		return "", rerr, nil
	}
	for _, d := range dirs {
		rd, err := filepath.EvalSymlinks(d)
		if err != nil {
			continue // a listed directory that does not exist holds nothing
		}
		if under(resolved, rd) {
			return resolved, nil, nil
		}
	}
	return "", nil, refused(RefusedSymlink, "%s resolves to a path outside the module's directories", clean)
}

// admitPath admits a local path (a multiprocess directory when dir is set, else a pidfile or
// a saved document) and pins it, so that nothing swapped in after the check is read: a
// directory is opened (O_PATH, no symlink on the way, as the resolved path has none) and read
// through /proc/self/fd; for a file its directory is pinned so and the file is named in it,
// where its reader opens it without following a link, as for every configured file.
func admitPath(dirs []string, path string, dir bool) (*Admitted, error) {
	if len(dirs) == 0 {
		return nil, refused(RefusedScheme, "the module allows no local path")
	}
	resolved, rerr, err := resolveUnder(dirs, path)
	if err != nil {
		return nil, err
	}
	if rerr != nil {
		return &Admitted{Address: filepath.Clean(path), Err: pathErr(rerr), fd: -1}, nil
	}
	pin, name := resolved, ""
	if !dir {
		pin, name = filepath.Dir(resolved), filepath.Base(resolved)
	}
	fd, refusal, err := pinPath(pin, path, unix.O_DIRECTORY)
	switch {
	case refusal != nil:
		return nil, refusal
	case err != nil:
		return &Admitted{Address: resolved, Err: pathErr(err), fd: -1}, nil
	case fd < 0:
		return &Admitted{Address: resolved, fd: -1}, nil
	}
	address := fmt.Sprintf("/proc/self/fd/%d", fd)
	if name != "" {
		address += "/" + name
	}
	return &Admitted{Address: address, fd: fd}, nil
}

// pathErr is the scrape failure of a path that cannot be resolved.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err // the path is the target's; the system's reason is enough
	}
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, unix.ENOTDIR):
		return fetch.Errorf(fetch.ReasonNotFound, "the target does not exist")
	case errors.Is(err, fs.ErrPermission):
		return fetch.Errorf(fetch.ReasonPermission, "the target cannot be resolved: %w", err)
	}
	return fetch.Errorf(fetch.ReasonOther, "the target cannot be resolved: %w", err)
}

// admitSocket admits a unix socket and pins it: the socket file is opened (O_PATH, with no
// symlink allowed on the way, as the resolved path has none) and the connection goes through
// /proc/self/fd, so a path swapped for a symlink after the check cannot redirect it.
func admitSocket(dirs []string, path string, address func(string) string) (*Admitted, error) {
	if len(dirs) == 0 {
		return nil, refused(RefusedScheme, "the module allows no unix socket")
	}
	resolved, rerr, err := resolveUnder(dirs, path)
	if err != nil {
		return nil, err
	}
	if rerr != nil {
		e := pathErr(rerr)
		if fetch.ReasonOf(e) == fetch.ReasonNotFound {
			// as a dial to a missing socket is reported
			e = fetch.Errorf(fetch.ReasonConnect, "no such socket")
		}
		return &Admitted{Address: address(filepath.Clean(path)), Err: e, fd: -1}, nil
	}
	fd, refusal, err := pinPath(resolved, path, 0)
	switch {
	case refusal != nil:
		return nil, refusal
	case err != nil:
		e := pathErr(err)
		if fetch.ReasonOf(e) == fetch.ReasonNotFound {
			e = fetch.Errorf(fetch.ReasonConnect, "no such socket")
		}
		return &Admitted{Address: address(resolved), Err: e, fd: -1}, nil
	case fd < 0:
		return &Admitted{Address: address(resolved), fd: -1}, nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		_ = unix.Close(fd)
		return &Admitted{Address: address(resolved), Err: fetch.Errorf(fetch.ReasonConnect, "the target is not a socket"), fd: -1}, nil
	}
	return &Admitted{Address: address(fmt.Sprintf("/proc/self/fd/%d", fd)), fd: fd}, nil
}

// pinPath opens resolved (O_PATH and flags, with no symlink allowed on the way, as the
// resolved path has none), so that its /proc/self/fd path reads what was checked. fd is -1
// with no error where nothing can be pinned (no /proc/self/fd, or a kernel before 5.6, without
// openat2): the resolved path, checked just now, is used. refusal is set when a symlink was
// swapped in since the check (path names the target in it); err is the open's error.
func pinPath(resolved, path string, flags uint64) (fd int, refusal, err error) {
	if !procSelfFD() {
		return -1, nil, nil
	}
	fd, err = unix.Openat2(unix.AT_FDCWD, resolved, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC | unix.O_NOFOLLOW | flags,
		Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	switch {
	case errors.Is(err, unix.ENOSYS):
		return -1, nil, nil
	case errors.Is(err, unix.ELOOP):
		return -1, refused(RefusedSymlink, "%s changed into a symlink while it was checked", filepath.Clean(path)), nil
	case err != nil:
		return -1, nil, err
	}
	return fd, nil, nil
}

var (
	procSelfOnce sync.Once
	procSelfOK   bool
)

// procSelfFD reports whether the exporter sees its own descriptors under /proc/self/fd.
func procSelfFD() bool {
	procSelfOnce.Do(func() {
		fi, err := os.Stat("/proc/self/fd")
		procSelfOK = err == nil && fi.IsDir()
	})
	return procSelfOK
}
