package collector

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The sources scraped on the request's goroutine (deadlineBound: uWSGI and nginx over TCP and
// HTTP) give up at their deadline on their own, against servers that accept and never answer,
// or answer one byte at a time forever: the scrape ends within the deadline and the source is
// down. Those that resolve a path (unix sockets, files), which a hung file system can hold
// past any deadline, keep their own goroutine and end at the deadline too.
func TestInlineSourcesHonourTheDeadline(t *testing.T) {
	for _, mode := range []string{"silent", "trickle"} {
		serve := func(ln net.Listener) {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					if mode == "silent" {
						buf := make([]byte, 4096)
						for {
							if _, err := c.Read(buf); err != nil {
								return
							}
						}
					}
					for _, b := range []byte(strings.Repeat("HTTP/1.1 200 OK\r\n{\"x", 1000)) {
						if _, err := c.Write([]byte{b}); err != nil {
							return
						}
						time.Sleep(20 * time.Millisecond)
					}
				}()
			}
		}
		tcp, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer tcp.Close()
		sock := filepath.Join(t.TempDir(), "s.sock")
		unix, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close()
		go serve(tcp)
		go serve(unix)

		doc := filepath.Join(t.TempDir(), "stats.json")
		if err := os.WriteFile(doc, []byte(`{"workers":[`), 0o600); err != nil { // cut short: down
			t.Fatal(err)
		}
		cfg := func(addr string) Config { return Config{Address: addr, Timeout: 300 * time.Millisecond} }
		var srcs []Source
		for _, s := range []struct {
			make   func() (Source, error)
			inline bool
		}{
			{func() (Source, error) { return NewUWSGI(cfg("unix://"+sock), UWSGIOptions{}) }, false},
			{func() (Source, error) { return NewUWSGI(cfg("tcp://"+tcp.Addr().String()), UWSGIOptions{}) }, true},
			{func() (Source, error) { return NewUWSGI(cfg("http://"+tcp.Addr().String()+"/stats"), UWSGIOptions{}) }, true},
			{func() (Source, error) {
				return NewNginx(cfg("http://"+tcp.Addr().String()+"/stub_status"), NginxOptions{})
			}, true},
			{func() (Source, error) { return NewNginx(cfg("unix:"+sock+":/stub_status"), NginxOptions{}) }, false},
			{func() (Source, error) { return NewUWSGI(cfg("file://"+doc), UWSGIOptions{}) }, false},
		} {
			src, err := s.make()
			if err != nil {
				t.Fatal(err)
			}
			b, ok := src.(deadlineBound)
			if inline := ok && b.boundByDeadline(); inline != s.inline {
				t.Fatalf("%s %s: scraped inline %v, want %v", src.Kind().Name, src.Config().Address, inline, s.inline)
			}
			srcs = append(srcs, src)
		}
		for _, src := range srcs {
			e := newExporter(t, src)
			start := time.Now()
			mfs, _ := e.Gatherer(context.Background(), 0).Gather()
			if el := time.Since(start); el > 2*time.Second {
				t.Errorf("%s: %s %s: scrape took %v, deadline 300ms", mode, src.Kind().Name, src.Config().Address, el)
			}
			up := -1.0
			for _, mf := range mfs {
				if mf.GetName() == src.Kind().Name+"_up" {
					up = mf.GetMetric()[0].GetGauge().GetValue()
				}
			}
			if up != 0 {
				t.Errorf("%s: %s %s: up = %v, want 0", mode, src.Kind().Name, src.Config().Address, up)
			}
		}
	}
}
