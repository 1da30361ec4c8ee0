package collector

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
	"github.com/wsgi-exporter/wsgi_exporter/multiproc"
)

// mpMemoryBound is the bound docs/multiproc.md states on what one scrape of one directory
// allocates (read, merge, metrics and gathering; so also on the heap it holds): 16 MiB + 2 KiB
// per file + 200 B per entry + 4 KiB per series (distinct keys or merged series, whichever
// is more) + 6 bytes per byte of distinct keys (with the files mapped, as by default). The
// limits cap each count, so with them it bounds any directory.
func mpMemoryBound(files, entries, series int, keyBytes int64) uint64 {
	return 16<<20 + 2048*uint64(files) + 200*uint64(entries) + 4096*uint64(series) + 6*uint64(keyBytes)
}

// mpScrapeAlloc scrapes a directory once (cold) and gathers it, with the collector off, and
// returns what that allocated, the families and the scrape's error.
func mpScrapeAlloc(t *testing.T, m *Multiproc) (uint64, []*dto.MetricFamily, error) {
	t.Helper()
	var a, b runtime.MemStats
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	runtime.GC()
	runtime.ReadMemStats(&a)
	w := testWriter(m)
	err := m.Scrape(context.Background(), w)
	var fams []*dto.MetricFamily
	if err == nil {
		fams = toDTO(assemble(nil, []*sourceOut{{src: m, w: w}}))
	}
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc, fams, err
}

// mpWriteMany writes name with n entries whose keys key(i) gives.
func mpWriteMany(t *testing.T, dir, name string, n int, key func(i int) string) {
	t.Helper()
	b := make([]byte, 8, 8+n*64)
	for i := 0; i < n; i++ {
		k := key(i)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(k)))
		b = append(b, k...)
		b = append(b, strings.Repeat(" ", 8-(len(k)+4)%8)...)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(1))
	}
	binary.LittleEndian.PutUint32(b, uint32(len(b)))
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestMultiprocMemoryBound: directories that fill each limit (files, entries, distinct keys,
// key bytes, merged series) are served, and directories over one (by a little, or, for the
// entries, a 64 MiB file of 4 million small entries) fail with reason too_large; what one
// scrape allocates stays under the documented bound either way. Keys over the length limit
// are dropped and counted.
func TestMultiprocMemoryBound(t *testing.T) {
	base := multiproc.Options{MaxFiles: 5000, MaxEntries: 100000, MaxSeries: 5000, MaxKeyLength: 8192, MaxKeyBytes: 8 << 20, MaxBytes: 1 << 30}
	counter := func(i int) string { return fmt.Sprintf(`["m", "m_total", {"a": "%d"}, "h"]`, i) }
	long := func(i int) string {
		return fmt.Sprintf(`["m", "m_total", {"a": "%d", "p": "%s"}, "h"]`, i, strings.Repeat("x", 8100))
	}
	type counts struct {
		files, entries, series int
		keyBytes               int64
	}
	for _, tc := range []struct {
		name    string
		fill    func(t *testing.T, dir string)
		n       counts  // of a directory under the limits (over them: nothing, the limits count)
		dropped float64 // key_too_long entries
	}{
		{"files", func(t *testing.T, dir string) {
			for f := 0; f < base.MaxFiles-1; f++ {
				mpWriteMany(t, dir, fmt.Sprintf("counter_%d.db", f), 1, func(int) string { return counter(f % 10) })
			}
		}, counts{base.MaxFiles - 1, base.MaxFiles - 1, 10, 10 * 40}, 0},
		{"files over", func(t *testing.T, dir string) {
			for f := 0; f <= base.MaxFiles; f++ {
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("junk_%d", f)), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}, counts{}, 0},
		{"entries", func(t *testing.T, dir string) {
			mpWriteMany(t, dir, "counter_1.db", base.MaxEntries-1, func(i int) string { return counter(i % 100) })
		}, counts{1, base.MaxEntries - 1, 100, 100 * 40}, 0},
		{"entries over: 4M small entries", func(t *testing.T, dir string) {
			mpWriteMany(t, dir, "counter_1.db", 4<<20, func(i int) string { return "[]" })
		}, counts{}, 0},
		{"series", func(t *testing.T, dir string) {
			mpWriteMany(t, dir, "counter_1.db", base.MaxSeries-100, counter)
		}, counts{1, base.MaxSeries - 100, base.MaxSeries - 100, int64(base.MaxSeries-100) * 40}, 0},
		{"series over", func(t *testing.T, dir string) {
			mpWriteMany(t, dir, "counter_1.db", base.MaxSeries+1, counter)
		}, counts{}, 0},
		{"key bytes", func(t *testing.T, dir string) {
			mpWriteMany(t, dir, "counter_1.db", int(base.MaxKeyBytes)/8192-1, long)
		}, counts{1, int(base.MaxKeyBytes)/8192 - 1, int(base.MaxKeyBytes)/8192 - 1, base.MaxKeyBytes}, 0},
		{"key bytes over", func(t *testing.T, dir string) {
			mpWriteMany(t, dir, "counter_1.db", int(base.MaxKeyBytes)/8100+1, long)
		}, counts{}, 0},
		{"merged series over (all mode)", func(t *testing.T, dir string) {
			for f := 0; f < base.MaxSeries/10+1; f++ {
				mpWriteMany(t, dir, fmt.Sprintf("gauge_all_%d.db", f), 10, func(i int) string { return fmt.Sprintf(`["g", "g", {"a": "%d"}, "h"]`, i) })
			}
		}, counts{}, 0},
		{"keys too long", func(t *testing.T, dir string) {
			mpWriteMany(t, dir, "counter_1.db", 1000, func(i int) string {
				if i%10 == 0 {
					return fmt.Sprintf(`["m", "m_total", {"a": "%d", "p": "%s"}, "h"]`, i, strings.Repeat("y", 9000))
				}
				return counter(i)
			})
		}, counts{1, 1000, 900, 900 * 40}, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.fill(t, dir)
			m := newMP(dir, MultiprocOptions{Options: base})
			alloc, fams, err := mpScrapeAlloc(t, m)
			over := tc.n == counts{}
			if over {
				if fetch.ReasonOf(err) != fetch.ReasonTooLarge {
					t.Fatalf("err %v (reason %s), want too_large", err, fetch.ReasonOf(err))
				}
			} else if err != nil {
				t.Fatal(err)
			}
			bound := mpMemoryBound(tc.n.files, tc.n.entries, tc.n.series, tc.n.keyBytes)
			if over {
				bound = mpMemoryBound(base.MaxFiles, base.MaxEntries, base.MaxSeries, base.MaxKeyBytes)
			}
			t.Logf("allocated %.1f MiB, bound %.1f MiB", float64(alloc)/(1<<20), float64(bound)/(1<<20))
			if alloc > bound {
				t.Errorf("one scrape allocated %d bytes, over the bound %d", alloc, bound)
			}
			if !over {
				if got := mpHealth(t, fams, "multiproc_entries_dropped_total", "reason", "key_too_long"); got != tc.dropped {
					t.Errorf("%v entries dropped as key_too_long, want %v", got, tc.dropped)
				}
			}
		})
	}
}
