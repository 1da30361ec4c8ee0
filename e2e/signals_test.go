package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// slowScrape starts a scrape whose uWSGI source hangs, so that it lasts its whole deadline:
// the announced timeout less the 0.5 s offset. It returns the channel its outcome arrives on.
func slowScrape(x *Exporter, timeoutSeconds int) <-chan scrapeResult {
	out := make(chan scrapeResult, 1)
	go func() {
		start := time.Now()
		req, _ := http.NewRequestWithContext(context.Background(), "GET", x.URL+"/metrics", nil)
		req.Header.Set("Accept", "text/plain; version=0.0.4")
		req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", fmt.Sprint(timeoutSeconds))
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Minute}
		resp, err := c.Do(req)
		if err != nil {
			out <- scrapeResult{err: err, took: time.Since(start)}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		out <- scrapeResult{code: resp.StatusCode, body: body, err: err, took: time.Since(start)}
	}()
	return out
}

type scrapeResult struct {
	code int
	body []byte
	err  error
	took time.Duration
}

// checkFull fails unless the scrape was answered in full: 200, a complete exposition with
// the hung source down and the statsd listener up.
func (r scrapeResult) checkFull(t *testing.T, statsdSource string) {
	t.Helper()
	if r.err != nil || r.code != 200 {
		t.Fatalf("scrape: status %d, err %v after %v", r.code, r.err, r.took)
	}
	m := ParseMetrics(t, r.body)
	if got := m.Get(t, "uwsgi_up", nil); got != 0 {
		t.Fatalf("uwsgi_up %v, want 0 (the source hangs)", got)
	}
	if got := m.Get(t, "gunicorn_statsd_up", map[string]string{"source": statsdSource}); got != 1 {
		t.Fatalf("gunicorn_statsd_up %v, want 1: the listener was stopped under a scrape in flight", got)
	}
	if m.Count("go_goroutines", nil) != 1 {
		t.Fatalf("the exposition is incomplete:\n%s", r.body)
	}
}

// waitExit waits for the exporter to end and returns its exit status (-1 if killed by a signal).
func waitExit(t *testing.T, x *Exporter, within time.Duration) int {
	t.Helper()
	select {
	case <-x.done:
	case <-time.After(within):
		t.Fatalf("the exporter did not exit within %v:\n%s", within, x.Output())
	}
	return x.Cmd.ProcessState.ExitCode()
}

// TestSIGHUPDuringScrape: SIGHUP used to kill the exporter (exit 129): the scrape in flight
// got an empty reply, nothing was logged and the unix statsd socket file was left behind.
// Now it is logged and ignored (there is no configuration file to reload yet); SIGTERM then
// ends the exporter cleanly and removes the socket file.
func TestSIGHUPDuringScrape(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "statsd.sock")
	x := StartExporter(t, "--uwsgi.stats-uri=tcp://"+hangListener(t), "--gunicorn.statsd-listen-address=unix:"+sock)
	if _, err := os.Lstat(sock); err != nil {
		t.Fatalf("the statsd socket file is missing: %v", err)
	}
	res := slowScrape(x, 4) // 3.5 s
	time.Sleep(time.Second)
	if err := x.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	r := <-res
	r.checkFull(t, "unix:"+sock)
	if x.Exited() {
		t.Fatalf("the exporter exited on SIGHUP:\n%s", x.Output())
	}
	waitLog(t, x, `msg="SIGHUP received; no configuration file to reload"`)
	if n := strings.Count(x.Output(), `level=INFO source=signals.go`); n != 1 {
		t.Fatalf("want one info line for SIGHUP, found %d in:\n%s", n, x.Output())
	}
	// Still serving after the SIGHUP.
	x.Scrape(t)
	if err := x.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, x, 10*time.Second); code != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0:\n%s", code, x.Output())
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Fatalf("the statsd socket file is left behind (%v)", err)
	}
}

// TestSIGTERMWaitsForScrapeInFlight: a scrape longer than the old fixed 5 s grace got an
// empty reply on SIGTERM. The grace now covers the longest scrape (--scrape.max-timeout +
// 30 s by default): the scrape is answered in full, new connections are refused at once, and
// the exporter exits 0.
func TestSIGTERMWaitsForScrapeInFlight(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "statsd.sock")
	x := StartExporter(t, "--uwsgi.stats-uri=tcp://"+hangListener(t), "--gunicorn.statsd-listen-address=unix:"+sock)
	res := slowScrape(x, 8) // 7.5 s
	time.Sleep(time.Second)
	if err := x.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if resp, err := http.Get(x.URL + "/-/healthy"); err == nil || !strings.Contains(err.Error(), "connection refused") {
		if err == nil {
			resp.Body.Close()
		}
		t.Fatalf("a new connection after SIGTERM: %v, want connection refused", err)
	}
	r := <-res
	r.checkFull(t, "unix:"+sock)
	if r.took < 7*time.Second {
		t.Fatalf("the scrape took %v: it did not wait for its 7.5 s deadline", r.took)
	}
	if code := waitExit(t, x, 10*time.Second); code != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0:\n%s", code, x.Output())
	}
	for _, want := range []string{`msg="shutting down: waiting for requests in flight" grace=2m30s`, `msg=stopped`} {
		if !strings.Contains(x.Output(), want) {
			t.Fatalf("log lacks %q:\n%s", want, x.Output())
		}
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Fatalf("the statsd socket file is left behind (%v)", err)
	}
}

// TestShutdownTimeoutBoundsTheWait: --web.shutdown-timeout caps the wait; a scrape still in
// flight then is cut, and the log says so.
func TestShutdownTimeoutBoundsTheWait(t *testing.T) {
	x := StartExporter(t, "--uwsgi.stats-uri=tcp://"+hangListener(t), "--web.shutdown-timeout=1s")
	res := slowScrape(x, 20)
	time.Sleep(500 * time.Millisecond)
	if err := x.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, x, 10*time.Second); code != 0 {
		t.Fatalf("exit status %d, want 0", code)
	}
	if r := <-res; r.err == nil {
		t.Fatalf("the scrape was answered (%d) though the grace was 1 s", r.code)
	}
	if !strings.Contains(x.Output(), `msg="requests still in flight at the end of the shutdown grace were cut" grace=1s`) {
		t.Fatalf("log:\n%s", x.Output())
	}
}
