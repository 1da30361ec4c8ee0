package redisstore

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wsgi-exporter/wsgi_exporter/internal/redistest"
	"github.com/wsgi-exporter/wsgi_exporter/multiproc"
)

// origKey is the original key the writer stores: prometheus_client's JSON key.
func origKey(metric, sample string, labels map[string]string, help string) string {
	if labels == nil {
		labels = map[string]string{}
	}
	b, err := json.Marshal([]any{metric, sample, labels, help})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// put writes one sample in the writer's layout: the metric hash and its metadata, with
// typeMode "counter", "gauge_livesum"…
func put(t testing.TB, c *redis.Client, prefix, typeMode, pid, orig string, v float64, ttl time.Duration) string {
	t.Helper()
	sum := md5.Sum([]byte(orig))
	h := hex.EncodeToString(sum[:])
	metric := prefix + ":" + typeMode + ":" + pid + ":metric:" + h
	meta := prefix + ":" + typeMode + ":" + pid + ":meta:" + h
	typ, mode, _ := strings.Cut(typeMode, "_")
	ctx := context.Background()
	if err := c.HSet(ctx, metric, "value", pyRepr(v), "timestamp", "0.0", "updated_at", "1700000000.5").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.HSet(ctx, meta, "original_key", orig, "created_at", "1700000000.5", "typ", typ, "multiprocess_mode", cmpOr(mode, "all")).Err(); err != nil {
		t.Fatal(err)
	}
	if ttl > 0 {
		c.PExpire(ctx, metric, ttl)
		c.PExpire(ctx, meta, ttl)
	}
	return metric
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// pyRepr formats a float as Python's repr does for the values tests use.
func pyRepr(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	case math.IsNaN(v):
		return "nan"
	}
	s := strconv.FormatFloat(v, 'g', -1, 64)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

func newStore(t testing.TB, srv *redistest.Server, db int, opts Options) *Store {
	t.Helper()
	s, err := New(Target{URL: srv.UnixURL(db), Password: redistest.Password, Timeout: 5 * time.Second}, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustRead(t testing.TB, s *Store) *Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	snap, err := s.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return snap
}

// samples renders families as exposition sample lines, "name{a="b",…} value", sorted: the
// same lines as samplesOf gives for the families Python printed.
func samples(fams []multiproc.Family) []string {
	var out []string
	line := func(name string, ls []multiproc.Label, extra *multiproc.Label, v float64) {
		var parts []string
		for _, l := range ls {
			parts = append(parts, fmt.Sprintf("%s=%q", l.Name, l.Value))
		}
		if extra != nil {
			parts = append(parts, fmt.Sprintf("%s=%q", extra.Name, extra.Value))
		}
		sort.Strings(parts)
		out = append(out, name+"{"+strings.Join(parts, ",")+"} "+num(v))
	}
	for _, f := range fams {
		for _, s := range f.Series {
			switch f.Type {
			case multiproc.TypeCounter:
				line(f.Name+"_total", s.Labels, nil, s.Value)
			case multiproc.TypeGauge:
				line(f.Name, s.Labels, nil, s.Value)
			case multiproc.TypeSummary:
				line(f.Name+"_count", s.Labels, nil, s.Count)
				line(f.Name+"_sum", s.Labels, nil, s.Sum)
			case multiproc.TypeHistogram:
				for _, b := range s.Buckets {
					line(f.Name+"_bucket", s.Labels, &multiproc.Label{Name: "le", Value: goFloat(b.UpperBound)}, b.Count)
				}
				line(f.Name+"_count", s.Labels, nil, s.Count)
				line(f.Name+"_sum", s.Labels, nil, s.Sum)
			}
		}
	}
	sort.Strings(out)
	return out
}

func num(v float64) string {
	if math.IsNaN(v) {
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// goFloat formats a bucket bound as prometheus_client's floatToGoString does.
func goFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// value returns the value of one sample line's series, or fails.
func value(t testing.TB, fams []multiproc.Family, sample string) float64 {
	t.Helper()
	for _, l := range samples(fams) {
		if name, v, ok := strings.Cut(l, " "); ok && name == sample {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no sample %s in:\n%s", sample, strings.Join(samples(fams), "\n"))
	return 0
}

func has(fams []multiproc.Family, sample string) bool {
	for _, l := range samples(fams) {
		if name, _, _ := strings.Cut(l, " "); name == sample {
			return true
		}
	}
	return false
}

// passwordFile writes the test server's password to a file, as the writer reads it.
func passwordFile(t testing.TB) string {
	p := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(p, []byte(redistest.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
