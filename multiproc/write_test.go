package multiproc

import (
	"encoding/binary"
	"math"
)

// testEntry is an entry to write into a test file.
type testEntry struct {
	key   string
	v, ts float64
}

// encodeDB lays out entries as the Python client's MmapedDict does, padded with zeros to
// size bytes (at least what the entries need).
func encodeDB(gen Generation, size int, entries ...testEntry) []byte {
	b := make([]byte, 8)
	for _, e := range entries {
		n := len(e.key)
		b = binary.LittleEndian.AppendUint32(b, uint32(n))
		b = append(b, e.key...)
		for i := 0; i < 8-(n+4)%8; i++ {
			b = append(b, ' ')
		}
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(e.v))
		if gen == GenTimestamp {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(e.ts))
		}
	}
	binary.LittleEndian.PutUint32(b, uint32(len(b)))
	for len(b) < size {
		b = append(b, 0)
	}
	return b
}
