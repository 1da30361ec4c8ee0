package uwsgi

import (
	"bytes"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"testing/iotest"
)

// TestDecodeFromReusesBuffers: once warm, a stream decode allocates no more than a decode of
// the same document held in memory, which needs no read buffer: the 32 KiB buffer and the
// scratch come from the last decode.
func TestDecodeFromReusesBuffers(t *testing.T) {
	b := fixture(t, "unix_4workers_2threads_metrics_busy_slow.json")
	inMemory := testing.AllocsPerRun(50, func() {
		if _, err := Decode(b); err != nil {
			t.Fatal(err)
		}
	})
	var r bytes.Reader
	stream := testing.AllocsPerRun(50, func() {
		r.Reset(b)
		if _, err := DecodeFrom(&r, int64(len(b)), Limits{}); err != nil {
			t.Fatal(err)
		}
	})
	if stream > inMemory {
		t.Errorf("a stream decode allocates %v times, one in memory %v: the read buffer is not reused", stream, inMemory)
	}
}

// TestDecodeFromConcurrentReuse decodes every fixture from several goroutines at once, read a
// byte at a time and in halves, each result equal to the in-memory decode: a buffer shared by
// two decodes, or a result pointing into a buffer used again, shows (run with -race).
func TestDecodeFromConcurrentReuse(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(fixtures, "*.json"))
	if len(files) == 0 {
		t.Fatalf("no fixtures in %s", fixtures)
	}
	var docs [][]byte
	var want []*Stats
	for _, p := range files {
		b := fixture(t, filepath.Base(p))
		st, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		docs, want = append(docs, b), append(want, st)
	}
	var wg sync.WaitGroup
	results := make([][]*Stats, 4)
	for g := range results {
		wg.Go(func() {
			for round := range 3 {
				for i, b := range docs {
					r := iotest.HalfReader(bytes.NewReader(b))
					if (g+round+i)%2 == 0 {
						r = iotest.OneByteReader(bytes.NewReader(b))
					}
					st, err := DecodeFrom(r, int64(len(b)), Limits{})
					if err != nil {
						t.Error(err)
						return
					}
					results[g] = append(results[g], st)
				}
			}
		})
	}
	wg.Wait()
	for g, rs := range results {
		for k, st := range rs {
			if i := k % len(docs); !reflect.DeepEqual(st, want[i]) {
				t.Errorf("goroutine %d, %s: the stream decode differs from the in-memory one", g, filepath.Base(files[i]))
			}
		}
	}
}
