package multiproc

import (
	"fmt"
	"sync/atomic"
)

// Merger merges samples that come from elsewhere than a multiprocess directory (the Redis
// store of gunicorn-prometheus-exporter) exactly as the entries of .db files are merged. Each
// sample is fed as an entry of the file that would have held it: feed the files in sorted
// name order (see FileName.DBName) and the entries of one file together.
//
// The merge keeps per-scrape state in the Keys it is given: a Key must not be fed to two
// Mergers at the same time. Feeding Keys from ParseKey to one Merger after another is fine.
type Merger struct {
	m    *merger
	file string // the file of the last entry fed
	seq  uint64 // files fed so far
	at   pos    // the last entry's position: files numbered in the order fed
}

// mergerEpochs numbers Mergers. They start far above the epochs of Readers, whose Keys are
// never fed to a Merger anyway.
var mergerEpochs atomic.Uint64

// NewMerger starts a merge.
func NewMerger() *Merger {
	return &Merger{m: newMerger(1<<62+mergerEpochs.Add(1), nil)}
}

// Add merges one sample: the entry of key k, value v and timestamp ts (0 where the writer
// keeps none) of the file f.
func (m *Merger) Add(k *Key, f *FileName, v, ts float64) {
	if name := f.DBName(); name != m.file || m.seq == 0 {
		m.file = name
		m.seq++
		m.at = pos{file: fmt.Sprintf("%016x", m.seq)} // positions in the order fed
	} else {
		m.at.idx++
	}
	m.m.add(k, f, m.at, v, ts)
}

// Finish returns the merged families, in the order their names were first met, and the
// entries left out of them by reason (EntryReasonBadSample, EntryReasonTypeClash).
func (m *Merger) Finish() (families []Family, dropped map[string]int) {
	dropped = map[string]int{}
	families = m.m.finish(nil, dropped)
	for r, n := range dropped {
		if n == 0 {
			delete(dropped, r)
		}
	}
	return families, dropped
}

// DBName is the name of the .db file the client would have written f to:
// TYPE_ID.db, or gauge_MODE_ID.db.
func (f FileName) DBName() string {
	if f.Type == TypeGauge {
		return f.Type + "_" + f.Mode + "_" + f.ID + ".db"
	}
	return f.Type + "_" + f.ID + ".db"
}
