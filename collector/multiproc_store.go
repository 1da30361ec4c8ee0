package collector

import (
	"sync"

	"github.com/wsgi-exporter/wsgi_exporter/multiproc"
)

// The health of a directory's store: the files of dead writers, read once and folded (see
// multiproc/store.go), and what each scrape could leave unopened thanks to it.
var (
	mpStoreFiles = gauge(MultiprocKind, "multiproc_store_files",
		"Files of dead writers folded into the store: read once, not opened again.")
	mpStoreProcesses = gauge(MultiprocKind, "multiproc_store_processes",
		"Dead writers (distinct ids) whose files are folded into the store.")
	mpStoreEntries = gauge(MultiprocKind, "multiproc_store_entries",
		"Entries the store holds (the folded files' entries).")
	mpStoreUsedBytes = gauge(MultiprocKind, "multiproc_store_used_bytes",
		"Used bytes of the files folded into the store.")
	mpFilesSkipped = gauge(MultiprocKind, "multiproc_files_skipped",
		"Files of the directory the last scrape did not open: folded into the store, or dead writers' live* gauges left out.")
	mpStoreFolds = counter(MultiprocKind, "multiproc_store_folds_total",
		"Files folded into the store.")
	mpStoreTakeBacks = counter(MultiprocKind, "multiproc_store_takebacks_total",
		"Files taken back out of the store and read again, by reason: removed, replaced (the name now names another file), alive (the pid exists again), changed (a recheck found the file changed).",
		"reason")
	mpStoreResets = counter(MultiprocKind, "multiproc_store_resets_total",
		"Times the store was emptied because another directory took the configured path.")
	mpListings = counter(MultiprocKind, "multiproc_listings_total",
		"Listings of the directory. A scrape reuses the last listing while the directory's modification and change times stay the same (and at most --multiproc.recheck-interval).")

	mpTakeBackReasons = sorted(multiproc.TakeBackRemoved, multiproc.TakeBackReplaced, multiproc.TakeBackAlive, multiproc.TakeBackChanged)
)

func init() {
	for _, f := range []*Family{mpStoreFiles, mpStoreProcesses, mpStoreEntries, mpStoreUsedBytes, mpFilesSkipped,
		mpStoreFolds, mpStoreTakeBacks, mpStoreResets, mpListings} {
		mpReservedNames[f.Name] = true
	}
}

// mpStoreCounters are a directory's store counters since start.
type mpStoreCounters struct {
	mu        sync.Mutex
	folds     float64
	takeBacks map[string]float64
	resets    float64
	listings  float64
}

func (c *mpStoreCounters) note(snap *multiproc.Snapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.takeBacks == nil {
		c.takeBacks = map[string]float64{}
	}
	c.folds += float64(snap.Store.Folded)
	for r, n := range snap.Store.TakenBack {
		c.takeBacks[r] += float64(n)
	}
	if snap.Store.Reset {
		c.resets++
	}
	if snap.Store.Listed {
		c.listings++
	}
}

// translateStore writes the store's health.
func (m *Multiproc) translateStore(w *Writer, snap *multiproc.Snapshot) {
	s := snap.Store
	w.Value(mpStoreFiles, float64(s.Files))
	w.Value(mpStoreProcesses, float64(s.Processes))
	w.Value(mpStoreEntries, float64(s.Entries))
	w.Value(mpStoreUsedBytes, float64(s.Used))
	w.Value(mpFilesSkipped, float64(s.Skipped))
	c := &m.store
	c.mu.Lock()
	defer c.mu.Unlock()
	w.Value(mpStoreFolds, c.folds)
	for _, r := range mpTakeBackReasons {
		w.Value(mpStoreTakeBacks, c.takeBacks[r], r)
	}
	w.Value(mpStoreResets, c.resets)
	w.Value(mpListings, c.listings)
}
