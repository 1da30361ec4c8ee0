package multiproc

import "sync/atomic"

// Merger merges samples that come from elsewhere than a multiprocess directory (the Redis
// store of gunicorn-prometheus-exporter) exactly as the entries of .db files are merged. Each
// sample is fed as an entry of the file that would have held it: feed the files in sorted
// name order (see FileName.DBName) and the entries of one file together.
//
// The merge keeps per-scrape state in the Keys it is given: a Key must not be fed to two
// Mergers at the same time. Feeding Keys from ParseKey to one Merger after another is fine.
type Merger struct {
	m *merger
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
	m.m.add(k, f, v, ts)
}

// Finish returns the merged families, in the order their names were first met, and the
// entries left out of them by reason (EntryReasonBadSample, EntryReasonTypeClash).
func (m *Merger) Finish() (families []Family, dropped map[string]int) {
	return m.m.families(), m.m.dropped
}

// DBName is the name of the .db file the client would have written f to:
// TYPE_ID.db, or gauge_MODE_ID.db.
func (f FileName) DBName() string {
	if f.Type == TypeGauge {
		return f.Type + "_" + f.Mode + "_" + f.ID + ".db"
	}
	return f.Type + "_" + f.ID + ".db"
}
