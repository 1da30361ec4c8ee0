package collector

import (
	"bytes"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

type mpLogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *mpLogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *mpLogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestMultiprocHostileServed: a directory with links out of it (to another tenant's .db file
// holding a token, to /etc/shadow), a FIFO, a unix socket, a device node and a directory, all
// named like .db files, serves its one regular file alone; each other name is counted once per
// scrape with its reason (symlink, not_regular) and logged once, and no byte of a foreign
// file is served, counted as a size or logged.
func TestMultiprocHostileServed(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test makes a device node: run it as root, as make test does")
	}
	dir, outside := t.TempDir(), t.TempDir()
	mpWriteDB(t, dir, "counter_1.db", mpEntry{`["req", "req_total", {"code": "200"}, "Requests."]`, 1})
	good, err := os.Stat(filepath.Join(dir, "counter_1.db"))
	if err != nil {
		t.Fatal(err)
	}
	mpWriteDB(t, outside, "tenant.db", mpEntry{`["req", "req_total", {"token": "SECRET-TOKEN-0123456789"}, "Requests."]`, 1000})
	if err := os.Chmod(filepath.Join(outside, "tenant.db"), 0o600); err != nil {
		t.Fatal(err)
	}
	tenant, _ := os.ReadFile(filepath.Join(outside, "tenant.db"))
	shadow, err := os.ReadFile("/etc/shadow")
	if err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{
		"counter_2.db":   filepath.Join(dir, "counter_1.db"),
		"counter_3.db":   filepath.Join(outside, "tenant.db"),
		"counter_4.db":   "/etc/shadow",
		"gauge_all_5.db": outside,
		"summary_6.db":   filepath.Join(outside, "nothing"),
	} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "counter_7.db"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(dir, "counter_8.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := syscall.Mknod(filepath.Join(dir, "counter_9.db"), syscall.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "histogram_10.db"), 0o755); err != nil {
		t.Fatal(err)
	}

	var logs mpLogBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := mpExporter(t, newMP(dir, MultiprocOptions{Logger: logger}))
	var out string
	for i := 0; i < 2; i++ {
		out = mpScrapeText(t, e)
	}
	for _, want := range []string{
		`req_total{code="200"} 1`,
		`multiproc_file_errors_total{multiproc_dir="` + dir + `",reason="symlink"} 10`,
		`multiproc_file_errors_total{multiproc_dir="` + dir + `",reason="not_regular"} 8`,
		`multiproc_files{multiproc_dir="` + dir + `",type="counter"} 1`,
		`multiproc_files{multiproc_dir="` + dir + `",type="gauge"} 0`,
		`multiproc_files{multiproc_dir="` + dir + `",type="histogram"} 0`,
		`multiproc_file_size_bytes{multiproc_dir="` + dir + `",type="counter"} ` + strconv.FormatInt(good.Size(), 10),
		`multiproc_file_size_bytes{multiproc_dir="` + dir + `",type="gauge"} 0`,
		`multiproc_used_bytes{multiproc_dir="` + dir + `",type="counter"} ` + strconv.FormatInt(good.Size(), 10),
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("missing %q", want)
		}
	}
	if strings.Contains(out, "SECRET") || strings.Contains(out, "token") {
		t.Errorf("the other tenant's series is served:\n%s", out)
	}
	l := logs.String()
	for _, name := range []string{"counter_2.db", "counter_3.db", "counter_4.db", "gauge_all_5.db", "summary_6.db", "counter_7.db", "counter_8.db", "counter_9.db", "histogram_10.db"} {
		if n := strings.Count(l, "file="+name+" "); n != 1 {
			t.Errorf("%s logged %d times, want once:\n%s", name, n, l)
		}
	}
	for _, f := range [][]byte{tenant, shadow} {
		f = f[:min(len(f), 512)]
		for i := 0; i+8 <= len(f); i++ {
			if strings.Contains(l, string(f[i:i+8])) {
				t.Fatalf("the log holds bytes of a foreign file (%q):\n%s", f[i:i+8], l)
			}
		}
	}
}
