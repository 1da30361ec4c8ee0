package collector

import (
	"context"
	"log/slog"
	"sync"

	"github.com/wsgi-exporter/wsgi_exporter/multiproc"
)

// MultiprocKind is a prometheus_client multiprocess directory (PROMETHEUS_MULTIPROC_DIR):
// the application's merged series and the directory's health (series: multiproc_up and
// multiproc_metrics.go).
var MultiprocKind = Kind{
	Name:        "multiproc",
	SourceLabel: "multiproc_dir",
	Title:       "prometheus_client multiprocess directory",
}

// MultiprocOptions are the settings of a multiprocess directory source.
type MultiprocOptions struct {
	multiproc.Options // how the directory is read
	// DirLabel adds the multiproc_dir label to the application's series. Set it when more
	// than one directory is configured, so that their series stay apart; it is decided by
	// configuration, never by what the files hold.
	DirLabel bool
	// Logger receives the directory's problems (a bad file is logged when it appears).
	Logger *slog.Logger
}

// Multiproc is a Source that serves the merged metrics of a prometheus_client
// multiprocess directory, plus the directory's health.
type Multiproc struct {
	cfg    Config
	opts   MultiprocOptions
	reader *multiproc.Reader
	logger *slog.Logger

	mu         sync.Mutex
	fileErrors map[string]float64 // by reason, since start
	dropped    map[string]float64 // by reason, since start
	logged     map[string]string  // file name -> reason already logged
	conflicts  map[string]bool    // family names already logged as conflicting
	store      mpStoreCounters
}

// NewMultiproc returns the source for the directory in cfg.Address.
func NewMultiproc(cfg Config, opts MultiprocOptions) (Source, error) {
	cfg, err := cfg.forKind(MultiprocKind)
	if err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &Multiproc{
		cfg:        cfg,
		opts:       opts,
		reader:     multiproc.NewReader(opts.Options),
		logger:     logger.With("kind", MultiprocKind.Name, "source", cfg.SourceName()),
		fileErrors: map[string]float64{},
		dropped:    map[string]float64{},
		logged:     map[string]string{},
		conflicts:  map[string]bool{},
	}
	for _, r := range mpFileReasons {
		m.fileErrors[r] = 0
	}
	for _, r := range mpDropReasons {
		m.dropped[r] = 0
	}
	return m, nil
}

func (m *Multiproc) Kind() Kind     { return MultiprocKind }
func (m *Multiproc) Config() Config { return m.cfg }

// Scrape reads and merges the directory and writes its series. Through an Exporter the
// directory is read with scrapeApp instead; Scrape serves callers of a single source (tests),
// where only the exporter's fixed names are refused.
func (m *Multiproc) Scrape(ctx context.Context, w *Writer) error {
	emit, err := m.scrapeApp(ctx)
	if err != nil {
		return err
	}
	emit(w, nil)
	return nil
}

// scrapeApp reads and merges the directory; its series are written after the other sources'
// (see appSource), so that no application family takes a name already served.
func (m *Multiproc) scrapeApp(ctx context.Context) (appEmit, error) {
	snap, err := m.reader.Read(ctx, m.cfg.Address)
	if err != nil {
		return nil, err
	}
	m.noteProblems(snap)
	m.store.note(snap)
	return func(w *Writer, names *nameClaims) { m.translate(w, snap, names) }, nil
}

// noteProblems counts the skipped files and entries and logs each file's problem once
// (again only after it went away and came back).
func (m *Multiproc) noteProblems(snap *multiproc.Snapshot) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := make(map[string]string, len(snap.Problems))
	for _, p := range snap.Problems {
		m.fileErrors[p.Reason]++
		now[p.Name] = p.Reason
		if m.logged[p.Name] != p.Reason {
			lvl := slog.LevelWarn
			if p.Reason == multiproc.FileReasonIgnored {
				lvl = slog.LevelDebug
			}
			m.logger.Log(context.Background(), lvl, "skipping a file of the multiprocess directory",
				"file", p.Name, "reason", p.Reason, "err", p.Err)
		}
	}
	m.logged = now
	for r, n := range snap.Dropped {
		if n > 0 && m.dropped[r] == 0 {
			m.logger.Warn("dropping entries of the multiprocess directory", "reason", r, "count", n)
		}
		m.dropped[r] += float64(n)
	}
}

// logConflict logs, once per name, an application family left out for its name.
func (m *Multiproc) logConflict(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.conflicts[name] || len(m.conflicts) >= 1024 {
		return
	}
	m.conflicts[name] = true
	m.logger.Warn("dropping an application metric family: its name is already served by the exporter or an earlier directory",
		"family", name)
}
