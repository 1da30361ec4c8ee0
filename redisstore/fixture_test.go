package redisstore

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/wsgi-exporter/wsgi_exporter/internal/redistest"
)

// -capture rewrites fixtures/redis from the test writer before TestFixture checks them:
// go test ./redisstore/ -run TestFixture -capture
var capture = flag.Bool("capture", false, "capture fixtures/redis again with the test writer")

const fixtures = "../fixtures/redis"

// dumped is one hash of a store dump, a line of fixtures/redis/*.jsonl.
type dumped struct {
	Key  string            `json:"key"`
	Hash map[string]string `json:"hash"`
}

// TestFixture loads the captured store into a fresh Redis and checks that its merge is the
// one prometheus_client printed for the same samples written as multiprocess files.
func TestFixture(t *testing.T) {
	if *capture {
		captureFixture(t)
	}
	srv := redistest.Start(t, redistest.Options{})
	n := load(t, srv.Client(0), filepath.Join(fixtures, "store.jsonl"))
	expo, err := os.ReadFile(filepath.Join(fixtures, "expected.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := pySamples(t, expo)
	s := newStore(t, srv, 0, Options{})
	snap := mustRead(t, s)
	compareLines(t, "fixture", samples(snap.Families), want)
	if snap.PIDs != 3 || snap.Keys["counter"] == 0 || n < 300 {
		t.Errorf("pids %d keys %v hashes %d", snap.PIDs, snap.Keys, n)
	}
}

// load writes a dump into c and returns how many hashes it held.
func load(t testing.TB, c *redis.Client, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	n := 0
	pipe := c.Pipeline()
	for sc.Scan() {
		var d dumped
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		args := make([]any, 0, 2*len(d.Hash))
		for k, v := range d.Hash {
			args = append(args, k, v)
		}
		pipe.HSet(context.Background(), d.Key, args...)
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := pipe.Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	return n
}

// captureFixture runs three writers that write to Redis and to a multiprocess directory,
// dumps the store, and keeps prometheus_client's merge of the directory.
func captureFixture(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	dir := t.TempDir()
	for n := range 3 {
		w := startWriter(t, srv, "--files", dir, "--ttl", "0")
		w.Do(fmt.Sprintf("work %d %d", 100+n, 12+5*n))
		w.Do(fmt.Sprintf("count %d", 2+n))
		w.Exit()
	}
	out, err := exec.Command(DebianPython, "-c", pythonMerge, dir).Output()
	if err != nil {
		t.Fatalf("python merge: %v", err)
	}
	c := srv.Client(0)
	ctx := context.Background()
	var lines []string
	iter := c.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		h, err := c.HGetAll(ctx, iter.Val()).Result()
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(dumped{Key: iter.Val(), Hash: h})
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(b))
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	var buf bytes.Buffer
	buf.WriteString(strings.Join(lines, "\n") + "\n")
	if err := os.WriteFile(filepath.Join(fixtures, "store.jsonl"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fixtures, "expected.txt"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("captured %d hashes", len(lines))
}
