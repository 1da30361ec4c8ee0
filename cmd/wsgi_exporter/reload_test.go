package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/wsgi-exporter/wsgi_exporter/collector"
)

// series returns the value of the series of name whose labels include want; false when
// there is none.
func series(mfs map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	for _, m := range mfs[name].GetMetric() {
		ok := true
		for k, v := range want {
			found := false
			for _, l := range m.Label {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			ok = ok && found
		}
		if !ok {
			continue
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

func reloadGauges(fl *fleet) string {
	return fmt.Sprintf("successful=%v", testutil.ToFloat64(fl.reloadOK))
}

// A bad file keeps the old configuration and sets the gauge to 0; a good one replaces it.
func TestReloadBadFileKeepsOld(t *testing.T) {
	dir := t.TempDir()
	doc := stats(t)
	liveStats(t, filepath.Join(dir, "a.sock"), doc, "a")
	liveStats(t, filepath.Join(dir, "b.sock"), doc, "b")
	cfg := writeConfig(t, dir, fmt.Sprintf("sources:\n  - {kind: uwsgi, name: a, address: \"unix://%s/a.sock\"}\n", dir))
	fl, srv := probeServer(t, "--config.file="+cfg)
	ts0 := testutil.ToFloat64(fl.reloadTime)
	upOf := func() string {
		_, mfs, _ := get(t, srv.URL+"/metrics", "")
		var names []string
		for _, m := range mfs["uwsgi_up"].GetMetric() {
			names = append(names, fmt.Sprintf("%s=%v", m.Label[0].GetValue(), m.GetGauge().GetValue()))
		}
		return strings.Join(names, ",")
	}
	if got := upOf(); got != "a=1" || reloadGauges(fl) != "successful=1" || ts0 == 0 {
		t.Fatalf("start: %s %s ts %v", got, reloadGauges(fl), ts0)
	}
	for _, bad := range []string{
		"sources:\n  - {kind: uwsgi, name: b, adress: x}\n",
		"sources:\n  - {kind: uwsgi, name: a, address: \"unix:///x/a.sock\"}\n  - {kind: uwsgi, name: a, address: \"unix:///x/b.sock\"}\n",
		"sources: [\n",
	} {
		writeConfig(t, dir, bad)
		err := fl.reload()
		if err == nil {
			t.Fatalf("%q accepted", bad)
		}
		if got := upOf(); got != "a=1" || reloadGauges(fl) != "successful=0" || testutil.ToFloat64(fl.reloadTime) != ts0 {
			t.Errorf("after %q (%v): %s %s", bad, err, got, reloadGauges(fl))
		}
	}
	_, mfs, _ := get(t, srv.URL+"/metrics", "")
	if v, ok := series(mfs, "wsgi_exporter_config_last_reload_successful", nil); !ok || v != 0 {
		t.Errorf("served gauge %v %v", v, ok)
	}
	writeConfig(t, dir, fmt.Sprintf("sources:\n  - {kind: uwsgi, name: b, address: \"unix://%s/b.sock\"}\n  - {kind: uwsgi, name: a, address: \"unix://%s/a.sock\"}\n", dir, dir))
	time.Sleep(10 * time.Millisecond) // the timestamp moves
	if err := fl.reload(); err != nil {
		t.Fatal(err)
	}
	if got := upOf(); got != "a=1,b=1" || reloadGauges(fl) != "successful=1" || testutil.ToFloat64(fl.reloadTime) <= ts0 {
		t.Errorf("after a good file: %s %s", got, reloadGauges(fl))
	}
}

// POST /-/reload reloads when --web.enable-lifecycle is on, and only then.
func TestReloadEndpoint(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "sources: []\n")
	_, srv := probeServer(t, "--config.file="+cfg)
	post := func(url string) (int, string) {
		resp, err := http.Post(url, "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = fmt.Fprint(&b, resp.Status)
		return resp.StatusCode, b.String()
	}
	if code, _ := post(srv.URL + "/-/reload"); code != 200 {
		t.Errorf("POST: %d", code)
	}
	writeConfig(t, dir, "sources: [\n")
	if code, _ := post(srv.URL + "/-/reload"); code != 500 {
		t.Errorf("POST of a bad file: %d", code)
	}
	if code, _, _ := get(t, srv.URL+"/-/reload", ""); code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", code)
	}

	writeConfig(t, dir, "sources: []\n")
	fl := testFleet(t, "--config.file="+cfg)
	mux, err := newMux(fl, "/metrics", false, false) // lifecycle off
	if err != nil {
		t.Fatal(err)
	}
	off := &http.Server{Handler: mux}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = off.Serve(l) }()
	defer off.Close()
	if code, _ := post("http://" + l.Addr().String() + "/-/reload"); code != http.StatusForbidden {
		t.Errorf("POST without --web.enable-lifecycle: %d", code)
	}

	// Without a file there is nothing to reload.
	nofile := testFleet(t)
	if err := nofile.reload(); err != errNoConfigFile || nofile.reloadHook() != nil {
		t.Errorf("reload without a file: %v", err)
	}
}

// sendStatsd sends one datagram to a unix datagram socket.
func sendStatsd(t *testing.T, path, line string) error {
	t.Helper()
	c, err := net.Dial("unixgram", path)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(line))
	return err
}

// A statsd listener whose entry did not change keeps its socket and counters across a
// reload; a changed entry starts over; a removed one lets go of its socket.
func TestReloadKeepsStatsdListener(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "statsd.sock")
	doc := stats(t)
	liveStats(t, filepath.Join(dir, "u.sock"), doc, "u")
	statsd := fmt.Sprintf("  - {kind: gunicorn_statsd, name: app, address: \"unix:%s\"}\n", sock)
	cfg := writeConfig(t, dir, "sources:\n"+statsd)
	fl, srv := probeServer(t, "--config.file="+cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fl.start(ctx)

	datagrams := func() float64 {
		_, mfs, _ := get(t, srv.URL+"/metrics", "")
		v, _ := series(mfs, "gunicorn_statsd_datagrams_total", map[string]string{"source": "app"})
		return v
	}
	// sendN sends n datagrams and waits until the counter reaches want.
	sendN := func(n int, want float64) {
		t.Helper()
		WaitUntil(t, func() bool { return sendStatsd(t, sock, "gunicorn.requests:1|c") == nil })
		for range n - 1 {
			if err := sendStatsd(t, sock, "gunicorn.requests:1|c"); err != nil {
				t.Fatal(err)
			}
		}
		WaitUntil(t, func() bool { return datagrams() == want })
	}
	sendN(3, 3)
	first := fl.current().exp.Sources()[0]

	// Another source added, the listener's entry unchanged: same source, same socket.
	writeConfig(t, dir, "sources:\n"+statsd+fmt.Sprintf("  - {kind: uwsgi, address: \"unix://%s/u.sock\"}\n", dir))
	if err := fl.reload(); err != nil {
		t.Fatal(err)
	}
	if got := fl.current().exp.Sources(); len(got) != 2 || got[0] != first {
		t.Fatalf("the listener was not kept: %v", got)
	}
	sendN(2, 5)

	// The entry changed (a label): a new listener on the same socket, counting from 0.
	writeConfig(t, dir, "sources:\n"+strings.Replace(statsd, "name: app,", "name: app, labels: {team: x},", 1))
	if err := fl.reload(); err != nil {
		t.Fatal(err)
	}
	second := fl.current().exp.Sources()[0]
	if second == first {
		t.Fatal("a changed entry kept its old listener")
	}
	sendN(1, 1)

	// Removed: the socket is let go of.
	writeConfig(t, dir, "sources: []\n")
	if err := fl.reload(); err != nil {
		t.Fatal(err)
	}
	if len(fl.runners) != 0 {
		t.Errorf("runners left: %d", len(fl.runners))
	}
	WaitUntil(t, func() bool { return sendStatsd(t, sock, "gunicorn.requests:1|c") != nil })
}

// A scrape in flight when the configuration is replaced finishes with the old sources; the
// next one has the new ones.
func TestReloadInFlightScrapeFinishesOnOld(t *testing.T) {
	dir := t.TempDir()
	hungStats(t, filepath.Join(dir, "hung.sock"))
	liveStats(t, filepath.Join(dir, "new.sock"), stats(t), "new")
	cfg := writeConfig(t, dir, fmt.Sprintf("sources:\n  - {kind: uwsgi, name: hung, address: \"unix://%s/hung.sock\", timeout: 2s}\n", dir))
	fl, srv := probeServer(t, "--config.file="+cfg)
	var wg sync.WaitGroup
	var old map[string]*dto.MetricFamily
	wg.Go(func() { _, old, _ = get(t, srv.URL+"/metrics", "") })
	WaitUntil(t, func() bool { return fl.expOpts.HandlerMetrics.InFlight() == 1 })
	writeConfig(t, dir, fmt.Sprintf("sources:\n  - {kind: uwsgi, name: new, address: \"unix://%s/new.sock\"}\n", dir))
	if err := fl.reload(); err != nil {
		t.Fatal(err)
	}
	_, now, _ := get(t, srv.URL+"/metrics", "")
	wg.Wait()
	if v, ok := series(old, "uwsgi_up", map[string]string{"stats_uri": "hung"}); !ok || v != 0 {
		t.Errorf("the in-flight scrape: hung up %v %v", v, ok)
	}
	if _, ok := series(old, "uwsgi_up", map[string]string{"stats_uri": "new"}); ok {
		t.Error("the in-flight scrape has the new source")
	}
	if v, ok := series(now, "uwsgi_up", map[string]string{"stats_uri": "new"}); !ok || v != 1 {
		t.Errorf("the next scrape: new up %v %v", v, ok)
	}
	if _, ok := series(now, "uwsgi_up", map[string]string{"stats_uri": "hung"}); ok {
		t.Error("the next scrape still has the removed source")
	}
}

// Unchanged entries keep their source objects; the modules are replaced.
func TestReloadKeepsUnchangedSources(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf(`sources:
  - {kind: uwsgi, address: "127.0.0.1:1"}
  - kind: nginx
    address: http://127.0.0.1:2/
    nginx: {basic_auth: {username: u, password_file: %s}}
`, pw)
	cfg := writeConfig(t, dir, base)
	fl := testFleet(t, "--config.file="+cfg)
	before := fl.current().exp.Sources()
	writeConfig(t, dir, "# moved\n"+base+"modules:\n  m: {kind: uwsgi, allow: {addresses: [127.0.0.1]}}\n")
	if err := fl.reload(); err != nil {
		t.Fatal(err)
	}
	after := fl.current().exp.Sources()
	if after[0] != before[0] || after[1] != before[1] || fl.current().modules["m"] == nil {
		t.Error("unchanged entries were rebuilt, or the module is missing")
	}
	// A new password rebuilds the nginx source only.
	if err := os.WriteFile(pw, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := fl.reload(); err != nil {
		t.Fatal(err)
	}
	again := fl.current().exp.Sources()
	if again[0] != before[0] || again[1] == before[1] {
		t.Error("a new password did not rebuild (only) the nginx source")
	}
	var _ collector.Source = again[0]
}
