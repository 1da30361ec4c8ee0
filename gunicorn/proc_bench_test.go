package gunicorn

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// BenchmarkProcRead measures one /proc read of a master (the test process) with 4 workers:
// stat, smaps_rollup and the heartbeat fd of each.
func BenchmarkProcRead(b *testing.B) {
	dir := b.TempDir()
	for i := 0; i < 4; i++ {
		fakeWorker(b, dir, nil)
	}
	pidfile := filepath.Join(dir, "g.pid")
	if err := os.WriteFile(pidfile, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		b.Fatal(err)
	}
	r, err := NewProcReader("")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m, err := r.Read(context.Background(), pidfile)
		if err != nil || len(m.Workers) != 4 {
			b.Fatalf("%v %+v", err, m)
		}
	}
}
