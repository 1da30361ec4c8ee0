package uwsgi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// bigDoc is a valid stats document of n workers whose two cores each carry pad bytes of
// request headers.
func bigDoc(n, pad int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"version":"2.0.21","workers":[`)
	vars := strings.Repeat("h", pad)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"pid":%d,"status":"idle","requests":%d,"apps":[{"id":0,"mountpoint":"","chdir":""}],`+
			`"cores":[{"id":0,"vars":["HTTP_COOKIE=%s"]},{"id":1,"vars":["HTTP_COOKIE=%s"]}]}`, i+1, 1000+i, i, vars, vars)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// scrapeConcurrently reads doc from a TCP stats server n times at once and returns the
// memory allocated meanwhile (by the whole process: the test server writes a ready buffer)
// and the first error.
func scrapeConcurrently(t *testing.T, doc []byte, n int) (uint64, error) {
	t.Helper()
	l := tcpListener(t)
	serve(t, l, writeDoc(doc))
	a, err := ParseAddress(l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(a, ClientOptions{})
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			st, err := c.Stats(ctx)
			if err == nil && len(st.Workers) != DefaultLimits.Workers {
				err = fmt.Errorf("%d workers kept", len(st.Workers))
			}
			errs <- err
		})
	}
	wg.Wait()
	runtime.ReadMemStats(&after)
	close(errs)
	for err := range errs {
		if err != nil {
			return after.TotalAlloc - before.TotalAlloc, err
		}
	}
	return after.TotalAlloc - before.TotalAlloc, nil
}

// Issue 10: six concurrent scrapes of a valid 32 MB document took 5.3 GB, twenty of a
// 10,000-worker one 2 GB. Each scrape now costs at most Limits.MaxAlloc, whatever it reads.
func TestConcurrentHugeDocumentsMemory(t *testing.T) {
	bound := uint64(Limits{}.MaxAlloc())
	for _, tc := range []struct {
		name string
		doc  []byte
		n    int
	}{
		{"31MiB x6", bigDoc(10000, 1500), 6},
		{"10000 workers x20", bigDoc(10000, 20), 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.doc) > DefaultMaxResponseSize {
				t.Fatalf("document of %d bytes is over the cap", len(tc.doc))
			}
			alloc, err := scrapeConcurrently(t, tc.doc, tc.n)
			t.Logf("%d scrapes of %d bytes: %d bytes allocated in all (%.1f MiB, %.1f MiB each); bound %.1f MiB each",
				tc.n, len(tc.doc), alloc, float64(alloc)/(1<<20), float64(alloc)/float64(tc.n)/(1<<20), float64(bound)/(1<<20))
			if alloc > uint64(tc.n)*bound {
				t.Fatalf("%d bytes allocated, over %d x %d", alloc, tc.n, bound)
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A scrape that gives up stops reading: the stats server sees its connection closed, and the
// decode did not read on to the end of the endless document.
func TestAbandonedScrapeStopsReading(t *testing.T) {
	l := tcpListener(t)
	written := make(chan int64, 1)
	serve(t, l, func(c net.Conn) {
		n, _ := io.Copy(c, endlessDoc()) // until the write fails: the client closed
		written <- n
	})
	_, err := fetchReason(t, "tcp://"+l.Addr().String(), 1<<40, 300*time.Millisecond)
	wantReason(t, err, fetch.ReasonTimeout)
	select {
	case n := <-written:
		t.Logf("the server wrote %d bytes before the connection closed", n)
	case <-time.After(time.Minute):
		t.Fatal("the connection stayed open after the scrape gave up")
	}
}

// A file:// source never repeats the file's bytes in its errors (issue 10: the first 16 bytes
// were logged) and never follows a symbolic link.
func TestFileTransportForeignContent(t *testing.T) {
	dir := t.TempDir()
	secret := "root:$6$hunter2hunter2:19000:0:99999:7:::\n"
	p := filepath.Join(dir, "shadow")
	if err := os.WriteFile(p, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := fetchReason(t, "file://"+p, 0, 5*time.Second)
	wantReason(t, err, fetch.ReasonDecode)
	if want := "decoding stats JSON: offset 0: the stats document is not a JSON object"; err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
	for _, doc := range []string{`{"version":"ro` + secret[2:] + `"`, `{"version":` + secret, `{"x":"` + secret + `"}` + secret} {
		if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := fetchReason(t, "file://"+p, 0, 5*time.Second)
		wantReason(t, err, fetch.ReasonDecode)
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "root") || strings.Contains(err.Error(), "$6") {
			t.Fatalf("the error repeats the file: %v", err)
		}
	}

	link := filepath.Join(dir, "stats.json")
	if err := os.Symlink(p, link); err != nil {
		t.Fatal(err)
	}
	_, err = fetchReason(t, "file://"+link, 0, 5*time.Second)
	wantReason(t, err, fetch.ReasonOther)
	if want := link + " is a symbolic link: name the file it points to"; err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
}
