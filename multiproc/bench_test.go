package multiproc

import (
	"context"
	"fmt"
	"testing"
)

// benchDir writes workers x (counters + histogram buckets) entries, like bench/multiproc_gen.py.
func benchDir(b *testing.B, workers, series int) (string, int) {
	dir := b.TempDir()
	var counters, hist []testEntry
	for i := 0; i < series/2; i++ {
		counters = append(counters, testEntry{key: fmt.Sprintf(`["app_requests_%d", "app_requests_%d_total", {"method": "GET", "path": "/api/v1/resource%d/{id}", "status": "200"}, "Requests."]`, i%40, i%40, i), v: float64(i)})
	}
	les := []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "+Inf"}
	for i := 0; len(hist) < series/2; i++ {
		for _, le := range les {
			hist = append(hist, testEntry{key: fmt.Sprintf(`["app_latency_seconds", "app_latency_seconds_bucket", {"le": "%s", "path": "/api/v1/resource%d/{id}"}, "Latency."]`, le, i), v: 1})
		}
		hist = append(hist, testEntry{key: fmt.Sprintf(`["app_latency_seconds", "app_latency_seconds_sum", {"path": "/api/v1/resource%d/{id}"}, "Latency."]`, i), v: 0.5})
	}
	for w := 0; w < workers; w++ {
		writeFile(b, dir, fmt.Sprintf("counter_%d.db", 1000+w), encodeDB(GenValue, 0, counters...))
		writeFile(b, dir, fmt.Sprintf("histogram_%d.db", 1000+w), encodeDB(GenTimestamp, 0, hist...))
	}
	return dir, workers * (len(counters) + len(hist))
}

// BenchmarkMultiprocParseFile: header, generation detection and the walk of one file.
func BenchmarkMultiprocParseFile(b *testing.B) {
	var entries []testEntry
	for i := 0; i < 2000; i++ {
		entries = append(entries, testEntry{key: fmt.Sprintf(`["m", "m_total", {"path": "/api/v1/resource%d/{id}"}, "Help."]`, i), v: 1})
	}
	data := encodeDB(GenValue, 0, entries...)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		used, gen, err := ParseFile(data)
		if err != nil {
			b.Fatal(err)
		}
		n := Entries(data, used, gen, func(Entry) {})
		if n != 2000 {
			b.Fatal(n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2000), "ns/entry")
}

// BenchmarkMultiprocRead: a warm read and merge of 64 workers x 2,000 entries.
func BenchmarkMultiprocRead(b *testing.B) {
	dir, n := benchDir(b, 64, 2000)
	for _, noMmap := range []bool{false, true} {
		b.Run(fmt.Sprintf("noMmap=%v", noMmap), func(b *testing.B) {
			r := NewReader(Options{NoMmap: noMmap})
			defer r.Close()
			if _, err := r.Read(context.Background(), dir); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Read(context.Background(), dir); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/entry")
		})
	}
}
