package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAddressSecretsHidden (issue 10 point 6): a token in the query of a stats or stub_status
// URL, or a password in an address, never appears in a label, the landing page or the log.
// Real uWSGI (--stats-http) and real nginx ignore the query, so the sources are up; two
// more point at closed ports so that their failures are logged.
func TestAddressSecretsHidden(t *testing.T) {
	RequireCommand(t, "uwsgi")
	const secret = "s3cr3tT0ken"
	httpStats := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	u := uwsgiStart(t, "http", "", "http://"+httpStats+"/", "--stats", httpStats, "--stats-http")
	u.waitReady(t)
	n := nginxStart(t, nil)
	deadUWSGI := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	deadNginx := fmt.Sprintf("127.0.0.1:%d", FreePort(t))

	uwsgiURI := "http://" + httpStats + "/?token=" + secret + "&format=json"
	nginxURI := n.stubURI() + "?access_token=" + secret
	nginxUnix := "unix://" + n.Socket + "?path=" + "/stub_status%3Fkey%3D" + secret
	x := StartExporter(t,
		"--uwsgi.stats-uri="+uwsgiURI, "--uwsgi.stats-uri=http://"+deadUWSGI+"/?token="+secret,
		"--nginx.scrape-uri="+nginxURI, "--nginx.scrape-uri="+nginxUnix,
		"--nginx.scrape-uri=http://"+deadNginx+"/stub_status?sig="+secret)

	m := x.Scrape(t)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"uwsgi_up", map[string]string{"stats_uri": "http://" + httpStats + "/?token=xxxxx&format=xxxxx"}, 1},
		{"uwsgi_up", map[string]string{"stats_uri": "http://" + deadUWSGI + "/?token=xxxxx"}, 0},
		{"uwsgi_workers", map[string]string{"stats_uri": "http://" + httpStats + "/?token=xxxxx&format=xxxxx"}, uwsgiWorkers},
		{"nginx_up", src(n.stubURI() + "?access_token=xxxxx"), 1},
		{"nginx_up", src("unix://" + n.Socket + "?path=%2Fstub_status%3Fkey%3Dxxxxx"), 1},
		{"nginx_up", src("http://" + deadNginx + "/stub_status?sig=xxxxx"), 0},
	} {
		if got := m.Get(t, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if strings.Contains(string(m.Raw), secret) {
		t.Fatalf("/metrics shows the secret")
	}
	_, landing := x.Get(t, "/", nil)
	if strings.Contains(string(landing), secret) || !strings.Contains(string(landing), "?token=xxxxx") {
		t.Fatalf("landing page shows the secret or not the source:\n%s", landing)
	}
	WaitFor(t, 10*time.Second, "failures logged", func() bool {
		return strings.Contains(x.Output(), deadUWSGI) && strings.Contains(x.Output(), deadNginx)
	})
	if strings.Contains(x.Output(), secret) {
		t.Fatalf("the log shows the secret:\n%s", x.Output())
	}

	// Refused at start: the error names the address without its password or token.
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--uwsgi.stats-uri=tcp://admin:" + secret + "@127.0.0.1:1717"},
		{"--uwsgi.stats-uri=admin:" + secret + "@127.0.0.1:1717"},
		{"--uwsgi.stats-uri=unix://admin:" + secret + "@/run/uwsgi.sock"},
		{"--uwsgi.stats-uri=file://admin:" + secret + "@" + filepath.Join(dir, "s.json")},
		{"--uwsgi.stats-uri=https://admin:" + secret + "@127.0.0.1:1717/"},
		{"--uwsgi.stats-uri=http://127.0.0.1:1717/?t=" + secret, "--uwsgi.stats-uri=tcp://127.0.0.1:1717", "--uwsgi.stats-uri=http://127.0.0.1:1717/?t=" + secret},
		{"--nginx.scrape-uri=http://admin:" + secret + "@127.0.0.1:1/stub_status"},
		{"--nginx.scrape-uri=http://127.0.0.1:1/s?k=" + secret, "--nginx.scrape-uri=http://127.0.0.1:1/s?k=" + secret},
		{"--nginx.scrape-uri=unix:/run/n.sock:/s?k=" + secret, "--nginx.scrape-uri=unix:///run/n.sock?path=/s%3Fk%3D" + secret},
	} {
		out, err := exec.Command(exporterBin, append([]string{"--web.listen-address=127.0.0.1:0"}, args...)...).CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 {
			t.Fatalf("%v: exit %v, want 2:\n%s", args, err, out)
		}
		if strings.Contains(string(out), secret) || !strings.Contains(string(out), "xxxxx") {
			t.Fatalf("%v: the error shows the secret, or does not show where it was:\n%s", args, out)
		}
	}
}
