package uwsgi

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// benchDocs are real captures of 4, 64 and 256 workers (2 threads each, metrics subsystem on,
// taken under load so that busy cores carry their request variables).
var benchDocs = []struct{ name, file string }{
	{"4workers", "unix_4workers_2threads_metrics_busy_slow.json"},
	{"64workers", "large/uwsgi_64workers_2threads_metrics_memory_busy.json"},
	{"256workers", "large/uwsgi_256workers_2threads_metrics_memory_busy.json"},
}

func loadBenchDoc(b *testing.B, file string) []byte {
	doc, err := os.ReadFile(filepath.Join(fixtures, file))
	if err != nil {
		b.Fatal(err)
	}
	return doc
}

// BenchmarkDecode compares, on the same documents in one run, encoding/json (what Decode used
// before) and Decode's own scanner, from memory and from a stream (as the client reads:
// encoding/json needs the whole document read first, the scanner reads as it goes).
//
//	go test -run '^$' -bench BenchmarkDecode -benchmem -count 6 ./uwsgi/ | benchstat -col /decoder -
func BenchmarkDecode(b *testing.B) {
	for _, d := range benchDocs {
		doc := loadBenchDoc(b, d.file)
		run := func(name string, f func() (*Stats, error)) {
			b.Run("doc="+d.name+"/decoder="+name, func(b *testing.B) {
				b.SetBytes(int64(len(doc)))
				b.ReportAllocs()
				for b.Loop() {
					st, err := f()
					if err != nil || len(st.Workers) == 0 {
						b.Fatal(err)
					}
				}
			})
		}
		run("stdlib", func() (*Stats, error) { return decodeStdlib(doc) })
		run("scanner", func() (*Stats, error) { return Decode(doc) })
		run("stdlib-read", func() (*Stats, error) {
			buf, err := fetch.ReadAll(bytes.NewReader(doc), DefaultMaxResponseSize)
			if err != nil {
				return nil, err
			}
			return decodeStdlib(buf)
		})
		run("scanner-stream", func() (*Stats, error) {
			return DecodeFrom(bytes.NewReader(doc), DefaultMaxResponseSize, Limits{})
		})
	}
}
