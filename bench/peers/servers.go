package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The WSGI app every uWSGI worker loads: it only has to exist, the benchmark reads stats.
const wsgiApp = `def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
`

// startUWSGI starts Debian's uWSGI with the python3 plugin, workers processes, the app on a
// unix socket and the stats server on the unix socket it returns, and waits until the stats
// document lists every worker with a pid (at 256 workers that is seconds after start).
func startUWSGI(dir string, workers int) (string, *proc, error) {
	bin, err := lookPath("uwsgi")
	if err != nil {
		return "", nil, fmt.Errorf("%w (Debian packages uwsgi and uwsgi-plugin-python3)", err)
	}
	if _, err := os.Stat("/usr/lib/uwsgi/plugins/python3_plugin.so"); err != nil {
		return "", nil, fmt.Errorf("the uWSGI python3 plugin is missing (Debian package uwsgi-plugin-python3): %w", err)
	}
	d := filepath.Join(dir, fmt.Sprintf("uwsgi-%d", workers))
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", nil, err
	}
	if err := os.WriteFile(filepath.Join(d, "app.py"), []byte(wsgiApp), 0o644); err != nil {
		return "", nil, err
	}
	stats := filepath.Join(d, "stats.sock")
	p, err := start(fmt.Sprintf("uwsgi-%d", workers), d, filepath.Join(d, "uwsgi.log"), syscall.SIGTERM,
		bin, "--plugin", "python3", "--master", "--die-on-term", "--no-orphans", "--disable-logging",
		"--processes", fmt.Sprint(workers), "--socket", filepath.Join(d, "app.sock"),
		"--stats", stats, "--wsgi-file", "app.py", "--chdir", d)
	if err != nil {
		return "", nil, err
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		n, err := uwsgiReadyWorkers(stats)
		if err == nil && n == workers {
			return stats, p, nil
		}
		if !p.alive() {
			return "", nil, fmt.Errorf("uwsgi exited: %s", p.logTail())
		}
		if time.Now().After(deadline) {
			p.stop()
			return "", nil, fmt.Errorf("uwsgi stats server did not list %d started workers in 3 min (last: %d, %v): %s", workers, n, err, p.logTail())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// uwsgiReadyWorkers reads the stats document and counts the workers that have a pid.
func uwsgiReadyWorkers(sock string) (int, error) {
	c, err := net.DialTimeout("unix", sock, 2*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var doc struct {
		Workers []struct {
			PID int `json:"pid"`
		} `json:"workers"`
	}
	if err := json.NewDecoder(io.LimitReader(c, 64<<20)).Decode(&doc); err != nil {
		return 0, err
	}
	n := 0
	for _, w := range doc.Workers {
		if w.PID > 0 {
			n++
		}
	}
	return n, nil
}

// startNginx starts nginx (one worker) serving stub_status on a free loopback port and returns
// the stub_status URL.
func startNginx(dir string) (string, *proc, error) {
	bin, err := lookPath("nginx")
	if err != nil {
		return "", nil, fmt.Errorf("%w (Debian package nginx-light or nginx)", err)
	}
	d := filepath.Join(dir, "nginx")
	if err := os.MkdirAll(filepath.Join(d, "tmp"), 0o755); err != nil {
		return "", nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort("tcp")
		if err != nil {
			return "", nil, err
		}
		conf := fmt.Sprintf(`worker_processes 1;
pid nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path tmp/body; proxy_temp_path tmp/proxy; fastcgi_temp_path tmp/fastcgi;
  uwsgi_temp_path tmp/uwsgi; scgi_temp_path tmp/scgi;
  server { listen 127.0.0.1:%d; location = /stub_status { stub_status; } }
}
`, port)
		if err := os.WriteFile(filepath.Join(d, "nginx.conf"), []byte(conf), 0o644); err != nil {
			return "", nil, err
		}
		p, err := start("nginx", d, filepath.Join(d, "nginx.log"), syscall.SIGTERM,
			bin, "-p", d+"/", "-c", filepath.Join(d, "nginx.conf"), "-e", "stderr", "-g", "daemon off;")
		if err != nil {
			return "", nil, err
		}
		url := fmt.Sprintf("http://127.0.0.1:%d/stub_status", port)
		if err := waitHTTP(url, p, 10*time.Second, "Active connections"); err != nil {
			lastErr = err
			p.stop()
			continue
		}
		return url, p, nil
	}
	return "", nil, fmt.Errorf("nginx did not start: %w", lastErr)
}

// waitHTTP polls url until it answers 200 with a body containing want, or p exits.
func waitHTTP(url string, p *proc, timeout time.Duration, want string) error {
	cl := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := cl.Get(url)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.Contains(string(b), want) {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if !p.alive() {
			return fmt.Errorf("%s exited: %s", p.name, p.logTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s not ready in %v: %v", p.name, url, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
