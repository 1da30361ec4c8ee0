// Package uwsgidecode compares JSON decoders on uWSGI stats documents, side by side in one
// run: encoding/json (what wsgi_exporter used first), github.com/goccy/go-json (a drop-in
// replacement built for speed), encoding/json/v2 (only with GOEXPERIMENT=jsonv2, see
// jsonv2_test.go) and wsgi_exporter's own streaming scanner (uwsgi.Decode / uwsgi.DecodeFrom).
//
//	cd bench/uwsgidecode && go test -run '^$' -bench . -benchmem -count 6 | tee out.txt
//	benchstat -row .name -col /decoder out.txt
package uwsgidecode

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	goccy "github.com/goccy/go-json"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
	"github.com/wsgi-exporter/wsgi_exporter/uwsgi"
)

const fixtures = "../../fixtures/uwsgi"

// docs are real captures of 4, 64 and 256 workers, and two made from the 256-worker one:
// 10,000 workers, and 31 MiB (under the 32 MiB cap) of workers whose cores carry ~1.2 KB of
// request variables each.
func docs(b testing.TB) []struct {
	name string
	doc  []byte
} {
	read := func(f string) []byte {
		doc, err := os.ReadFile(filepath.Join(fixtures, f))
		if err != nil {
			b.Fatal(err)
		}
		return doc
	}
	w256 := read("large/uwsgi_256workers_2threads_metrics_memory_busy.json")
	return []struct {
		name string
		doc  []byte
	}{
		{"4workers", read("unix_4workers_2threads_metrics_busy_slow.json")},
		{"64workers", read("large/uwsgi_64workers_2threads_metrics_memory_busy.json")},
		{"256workers", w256},
		{"10000workers", grow(b, w256, 10000, 0)},
		{"31MiB", grow(b, w256, 0, 1200)},
	}
}

// grow returns the document with n workers, each a copy of the first busy one, whose cores'
// request variables are padded with a header of pad bytes; n 0 means as many as fit in 31 MiB.
func grow(b testing.TB, doc []byte, n, pad int) []byte {
	var m map[string]stdjson.RawMessage
	if err := stdjson.Unmarshal(doc, &m); err != nil {
		b.Fatal(err)
	}
	var ws []map[string]any
	if err := stdjson.Unmarshal(m["workers"], &ws); err != nil {
		b.Fatal(err)
	}
	w0 := ws[0]
	for _, w := range ws {
		if w["status"] == "busy" {
			w0 = w
			break
		}
	}
	if pad > 0 {
		for _, c := range w0["cores"].([]any) {
			core := c.(map[string]any)
			core["vars"] = append(core["vars"].([]any), "HTTP_X_PAD="+strings.Repeat("p", pad))
		}
	}
	one, err := stdjson.Marshal(w0)
	if err != nil {
		b.Fatal(err)
	}
	if n == 0 {
		n = (31 << 20) / (len(one) + 24)
	}
	var out bytes.Buffer
	out.WriteString(`{"workers":[`)
	for i := range n {
		if i > 0 {
			out.WriteByte(',')
		}
		fmt.Fprintf(&out, `{"id":%d,"pid":%d,`, i+1, 1000+i)
		out.Write(one[1:])
	}
	out.WriteString("]")
	for k, v := range m {
		if k != "workers" {
			fmt.Fprintf(&out, ",%q:%s", k, v)
		}
	}
	out.WriteString("}")
	return out.Bytes()
}

// blank replaces raw control bytes inside strings by spaces, as uwsgi.Decode reads them; the
// reflection decoders need it before they accept a document uWSGI wrote during an odd request.
func blank(b []byte) []byte {
	var out []byte
	in, esc := false, false
	for i, c := range b {
		switch {
		case esc:
			esc = false
		case in && c == '\\':
			esc = true
		case c == '"':
			in = !in
		case in && c < 0x20:
			if out == nil {
				out = bytes.Clone(b)
			}
			out[i] = ' '
		}
	}
	if out == nil {
		return b
	}
	return out
}

type unmarshal func([]byte, any) error

// viaReflection decodes the way a reflection decoder is used: try, and on a syntax error blank
// control bytes and try again.
func viaReflection(u unmarshal, isSyntax func(error) bool) func([]byte) (*uwsgi.Stats, error) {
	return func(doc []byte) (*uwsgi.Stats, error) {
		st := new(uwsgi.Stats)
		err := u(doc, st)
		if err != nil && isSyntax(err) {
			st = new(uwsgi.Stats)
			err = u(blank(doc), st)
		}
		return st, err
	}
}

var decoders = []struct {
	name   string
	decode func([]byte) (*uwsgi.Stats, error)
}{
	{"stdlib", viaReflection(stdjson.Unmarshal, func(err error) bool {
		var se *stdjson.SyntaxError
		return errors.As(err, &se)
	})},
	{"goccy", viaReflection(goccy.Unmarshal, func(err error) bool {
		var se *goccy.SyntaxError
		return errors.As(err, &se)
	})},
	{"scanner", uwsgi.Decode},
}

// BenchmarkDecode: the decode of a document already in memory.
func BenchmarkDecode(b *testing.B) {
	for _, d := range docs(b) {
		for _, dec := range append(decoders, extraDecoders...) {
			b.Run(fmt.Sprintf("doc=%s/decoder=%s", d.name, dec.name), func(b *testing.B) {
				b.SetBytes(int64(len(d.doc)))
				b.ReportAllocs()
				for b.Loop() {
					st, err := dec.decode(d.doc)
					if err != nil || len(st.Workers) == 0 {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkReadDecode: what a scrape costs, read included. The reflection decoders need the
// whole document in memory first (fetch.ReadAll, as the client did); the scanner reads from
// the stream through its 32 KiB buffer.
func BenchmarkReadDecode(b *testing.B) {
	for _, d := range docs(b) {
		for _, dec := range append(decoders, extraDecoders...) {
			b.Run(fmt.Sprintf("doc=%s/decoder=%s", d.name, dec.name), func(b *testing.B) {
				b.SetBytes(int64(len(d.doc)))
				b.ReportAllocs()
				for b.Loop() {
					var st *uwsgi.Stats
					var err error
					if dec.name == "scanner" {
						st, err = uwsgi.DecodeFrom(bytes.NewReader(d.doc), uwsgi.DefaultMaxResponseSize, uwsgi.Limits{})
					} else {
						var buf []byte
						if buf, err = fetch.ReadAll(bytes.NewReader(d.doc), uwsgi.DefaultMaxResponseSize); err == nil {
							st, err = dec.decode(buf)
						}
					}
					if err != nil || len(st.Workers) == 0 {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestDecodersAgree: on the real captures every decoder gives the same data (the scanner
// leaves out uWSGI's built-in worker metrics, so those are removed from the others' results).
func TestDecodersAgree(t *testing.T) {
	for _, d := range docs(t)[:3] {
		want, err := uwsgi.Decode(d.doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, dec := range append(decoders, extraDecoders...) {
			got, err := dec.decode(d.doc)
			if err != nil {
				t.Fatalf("%s %s: %v", dec.name, d.name, err)
			}
			for k := range got.Metrics {
				if _, ok := want.Metrics[k]; !ok && strings.HasPrefix(k, "worker.") {
					delete(got.Metrics, k)
				}
			}
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
				t.Fatalf("%s %s differs from the scanner", dec.name, d.name)
			}
		}
	}
}
