package redisstore

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wsgi-exporter/wsgi_exporter/internal/redistest"
)

// pyKey formats a key as prometheus_client's json.dumps(..., sort_keys=True) does: with
// spaces after separators (labels given in sorted order).
func pyKey(metric, sample string, labels [][2]string, help string) string {
	s := `["` + metric + `", "` + sample + `", {`
	for i, l := range labels {
		if i > 0 {
			s += ", "
		}
		s += `"` + l[0] + `": "` + l[1] + `"`
	}
	return s + `}, "` + help + `"]`
}

// benchSeries is one worker's samples: 2,000 entries, as a mid-sized application has them.
//
//	600 counter entries   http_requests_total{code, path}: 300 paths x 2 codes
//	1,100 histogram       http_request_duration_seconds{path}: 100 paths x (10 buckets + _sum)
//	100 summary           response_size_bytes{path}: 50 paths x (_count + _sum)
//	200 gauge (livesum)   in_progress{path}: 200 paths
type benchEntry struct {
	typeMode, key string
}

func benchSeries() []benchEntry {
	var out []benchEntry
	for p := range 300 {
		for _, code := range []string{"200", "500"} {
			out = append(out, benchEntry{"counter", pyKey("http_requests", "http_requests_total",
				[][2]string{{"code", code}, {"path", "/api/v1/resource/" + strconv.Itoa(p)}}, "Requests served.")})
		}
	}
	bounds := []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "+Inf"}
	for p := range 100 {
		path := "/api/v1/resource/" + strconv.Itoa(p)
		for _, le := range bounds {
			out = append(out, benchEntry{"histogram", pyKey("http_request_duration_seconds", "http_request_duration_seconds_bucket",
				[][2]string{{"le", le}, {"path", path}}, "Request duration.")})
		}
		out = append(out, benchEntry{"histogram", pyKey("http_request_duration_seconds", "http_request_duration_seconds_sum",
			[][2]string{{"path", path}}, "Request duration.")})
	}
	for p := range 50 {
		path := "/api/v1/resource/" + strconv.Itoa(p)
		for _, sfx := range []string{"_count", "_sum"} {
			out = append(out, benchEntry{"summary", pyKey("response_size_bytes", "response_size_bytes"+sfx,
				[][2]string{{"path", path}}, "Response sizes.")})
		}
	}
	for p := range 200 {
		out = append(out, benchEntry{"gauge_livesum", pyKey("in_progress", "in_progress",
			[][2]string{{"path", "/api/v1/resource/" + strconv.Itoa(p)}}, "Requests in progress.")})
	}
	return out
}

// populate writes workers x benchSeries in the writer's layout, with pipelines.
func populate(tb testing.TB, c *redis.Client, workers int) int {
	tb.Helper()
	ctx := context.Background()
	series := benchSeries()
	n := 0
	for w := range workers {
		pid := strconv.Itoa(1000 + w)
		pipe := c.Pipeline()
		for i, e := range series {
			sum := md5.Sum([]byte(e.key))
			h := hex.EncodeToString(sum[:])
			base := "gunicorn:" + e.typeMode + ":" + pid + ":"
			pipe.HSet(ctx, base+"metric:"+h, "value", strconv.FormatFloat(float64(i*w%97)+0.5, 'f', -1, 64),
				"timestamp", "0.0", "updated_at", "1700000000.123456")
			typ, mode, _ := strings.Cut(e.typeMode, "_")
			pipe.HSet(ctx, base+"meta:"+h, "original_key", e.key, "created_at", "1700000000.123456",
				"typ", typ, "multiprocess_mode", cmpOr(mode, "all"))
			n++
		}
		if _, err := pipe.Exec(ctx); err != nil {
			tb.Fatal(err)
		}
	}
	return n
}

// BenchmarkRead: 64 workers x 2,000 series (128,000 metric keys, as many metadata hashes)
// read over the unix socket and over TCP on loopback. cold: a new store (every metadata
// hash read, every key parsed); warm: later reads of one store (values only). With PEER_SRC
// set to the src directory of a gunicorn-prometheus-exporter checkout, its own Python
// collector reads the same database over TCP in the same run (reader=python-sidecar: the
// best and median of 3 collect + generate_latest, as custom metrics).
//
//	go test -run '^$' -bench BenchmarkRead -benchtime 10x ./redisstore/
func BenchmarkRead(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	start := time.Now()
	keys := populate(b, srv.Client(0), 64)
	b.Logf("populated %d metric keys in %v", keys, time.Since(start).Round(time.Millisecond))
	if src := os.Getenv("PEER_SRC"); src != "" {
		b.Run("reader=python-sidecar", func(b *testing.B) {
			cmd := exec.Command(DebianPython, "testdata/peer_collect.py", strconv.Itoa(srv.Port), redistest.Password, "3")
			cmd.Env = append(os.Environ(), "PEER_SRC="+src)
			var best, median, cpuS float64
			var samples int
			var server, serverCPU float64
			for b.Loop() {
				server = redisCPU(b, srv)
				out, err := cmd.Output()
				if err != nil {
					b.Fatalf("peer collector: %v", err)
				}
				if _, err := fmt.Sscanf(string(out), "best_seconds %g median_seconds %g cpu_seconds %g samples %d", &best, &median, &cpuS, &samples); err != nil {
					b.Fatalf("peer collector said %q: %v", out, err)
				}
				serverCPU = (redisCPU(b, srv) - server) / 3
				cmd = exec.Command(cmd.Path, cmd.Args[1:]...)
				cmd.Env = append(os.Environ(), "PEER_SRC="+src)
			}
			b.ReportMetric(best, "best-s")
			b.ReportMetric(median, "median-s")
			b.ReportMetric(cpuS, "cpu-s/op")
			b.ReportMetric(serverCPU, "redis-cpu-s/op")
			b.ReportMetric(float64(samples), "samples")
		})
	}
	for _, tr := range []struct{ name, url string }{{"unix", srv.UnixURL(0)}, {"tcp", srv.URL(0)}} {
		open := func(b *testing.B) *Store {
			s, err := New(Target{URL: tr.url, Password: redistest.Password, Timeout: time.Minute}, Options{})
			if err != nil {
				b.Fatal(err)
			}
			return s
		}
		read := func(b *testing.B, s *Store) *Snapshot {
			snap, err := s.Read(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			if snap.Keys["counter"] != 64*600 || len(snap.Families) != 4 {
				b.Fatalf("keys %v families %d", snap.Keys, len(snap.Families))
			}
			return snap
		}
		report := func(b *testing.B, rt int, bytes int64) {
			b.ReportMetric(float64(rt)/float64(b.N), "roundtrips/op")
			b.ReportMetric(float64(bytes)/float64(b.N)/(1<<20), "redisMiB/op")
		}
		// CPU seconds per read of this process and of redis-server: steadier than wall time
		// on a shared machine.
		cpu := func(b *testing.B, self, server float64) {
			b.ReportMetric((selfCPU()-self)/float64(b.N), "cpu-s/op")
			b.ReportMetric((redisCPU(b, srv)-server)/float64(b.N), "redis-cpu-s/op")
		}
		b.Run(fmt.Sprintf("transport=%s/read=cold", tr.name), func(b *testing.B) {
			rt, bytes := 0, int64(0)
			var self, server float64
			for b.Loop() {
				if self == 0 {
					self, server = selfCPU(), redisCPU(b, srv)
				}
				s := open(b)
				snap := read(b, s)
				rt, bytes = rt+snap.RoundTrips, bytes+snap.Bytes
				s.Close()
			}
			report(b, rt, bytes)
			cpu(b, self, server)
		})
		b.Run(fmt.Sprintf("transport=%s/read=warm", tr.name), func(b *testing.B) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			s := open(b)
			defer s.Close()
			read(b, s)
			runtime.GC()
			runtime.ReadMemStats(&after)
			// What the store keeps between reads: per key its name, metadata and last value.
			kept := float64(after.HeapAlloc-before.HeapAlloc) / (1 << 20)
			rt, bytes := 0, int64(0)
			var self, server float64
			for b.Loop() {
				if self == 0 {
					self, server = selfCPU(), redisCPU(b, srv)
				}
				snap := read(b, s)
				rt, bytes = rt+snap.RoundTrips, bytes+snap.Bytes
			}
			report(b, rt, bytes)
			cpu(b, self, server)
			b.ReportMetric(kept, "keptMiB")
		})
	}
}

// selfCPU is this process' user and system CPU seconds so far.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// redisCPU is redis-server's user and system CPU seconds so far (INFO cpu).
func redisCPU(tb testing.TB, srv *redistest.Server) float64 {
	info, err := srv.Client(0).Info(context.Background(), "cpu").Result()
	if err != nil {
		tb.Fatal(err)
	}
	total := 0.0
	for _, line := range strings.Split(info, "\r\n") {
		for _, f := range []string{"used_cpu_sys:", "used_cpu_user:"} {
			if v, ok := strings.CutPrefix(line, f); ok {
				x, err := strconv.ParseFloat(v, 64)
				if err != nil {
					tb.Fatal(err)
				}
				total += x
			}
		}
	}
	return total
}
