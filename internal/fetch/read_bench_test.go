package fetch

import (
	"bytes"
	"testing"
)

// endless is a peer that never stops sending.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

// BenchmarkReadAllEndless reads a peer that never ends with the 32 MiB cap uWSGI uses.
func BenchmarkReadAllEndless(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadAll(endless{}, 32<<20); ReasonOf(err) != ReasonTooLarge {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadAllBody reads a document of a given size under the 32 MiB cap.
func BenchmarkReadAllBody(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"200B", 200}, {"64KiB", 64 << 10}, {"1MiB", 1 << 20}, {"32MiB", 32 << 20}} {
		doc := bytes.Repeat([]byte("x"), size.n)
		b.Run(size.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				got, err := ReadAll(bytes.NewReader(doc), 32<<20)
				if err != nil || len(got) != size.n {
					b.Fatal(len(got), err)
				}
			}
		})
	}
}
