package collector

import (
	"context"
	"log/slog"
	"math"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsgi-exporter/wsgi_exporter/multiproc"
)

// MultiprocConfig configures one multiprocess directory source.
type MultiprocConfig struct {
	Config  Config // Address is the directory
	Options multiproc.Options
	// DirLabel adds the multiproc_dir label to the application's series. Set it when more
	// than one directory is configured, so that their series stay apart; it is decided by
	// configuration, never by what the files hold.
	DirLabel bool
	Logger   *slog.Logger
}

// Multiproc is a Source that serves the merged metrics of a prometheus_client
// multiprocess directory, plus the directory's health.
type Multiproc struct {
	cfg    MultiprocConfig
	reader *multiproc.Reader
	logger *slog.Logger

	mu         sync.Mutex
	fileErrors map[string]float64 // by reason, since start
	dropped    map[string]float64 // by reason, since start
	logged     map[string]string  // file name -> reason already logged
	conflicts  map[string]bool    // family names already logged as conflicting
	descs      map[string]*descEntry
	epoch      uint64
}

type descEntry struct {
	desc  *prometheus.Desc
	epoch uint64
}

// NewMultiproc returns the source for one directory.
func NewMultiproc(cfg MultiprocConfig) *Multiproc {
	cfg.Config.Kind = MultiprocKind.Name
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &Multiproc{
		cfg:        cfg,
		reader:     multiproc.NewReader(cfg.Options),
		logger:     logger.With("kind", MultiprocKind.Name, "source", cfg.Config.SourceName()),
		fileErrors: map[string]float64{},
		dropped:    map[string]float64{},
		logged:     map[string]string{},
		conflicts:  map[string]bool{},
		descs:      map[string]*descEntry{},
	}
	for _, r := range mpFileReasons {
		m.fileErrors[r] = 0
	}
	for _, r := range mpDropReasons {
		m.dropped[r] = 0
	}
	return m
}

func (m *Multiproc) Kind() Kind     { return MultiprocKind }
func (m *Multiproc) Config() Config { return m.cfg.Config }

// Scrape reads and merges the directory. Through an Exporter the directory is read with
// scrapeApp instead; Scrape serves callers of a single source (tests, bench/multiproc_bench),
// where only the exporter's fixed names are refused.
func (m *Multiproc) Scrape(ctx context.Context) (Emit, error) {
	emit, err := m.scrapeApp(ctx)
	if err != nil {
		return nil, err
	}
	return func(ch chan<- prometheus.Metric) { emit(ch, nil) }, nil
}

// scrapeApp reads and merges the directory; its metrics are built after the other sources'
// (see appSource), so that no application family takes a name already served.
func (m *Multiproc) scrapeApp(ctx context.Context) (appEmit, error) {
	snap, err := m.reader.Read(ctx, m.cfg.Config.Address)
	if err != nil {
		return nil, err
	}
	m.noteProblems(snap)
	return func(ch chan<- prometheus.Metric, names *nameClaims) { m.emit(snap, ch, names) }, nil
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

func (m *Multiproc) emit(snap *multiproc.Snapshot, ch chan<- prometheus.Metric, names *nameClaims) {
	dir := m.cfg.Config.SourceName()
	drops := m.emitApp(snap, dir, ch, names)

	m.mu.Lock()
	for r, n := range drops {
		m.dropped[r] += float64(n)
	}
	for r, v := range m.fileErrors {
		ch <- prometheus.MustNewConstMetric(mpFileErrorsDesc, prometheus.CounterValue, v, dir, r)
	}
	for r, v := range m.dropped {
		ch <- prometheus.MustNewConstMetric(mpDroppedDesc, prometheus.CounterValue, v, dir, r)
	}
	m.mu.Unlock()

	files := map[string]float64{}
	size := map[string]float64{}
	used := map[string]float64{}
	dead := map[string]float64{}
	procs := map[string]int8{}
	for _, f := range snap.Files {
		files[f.File.Type]++
		size[f.File.Type] += float64(f.Size)
		used[f.File.Type] += float64(f.Used)
		if f.Alive == 0 {
			dead[f.File.Type]++
		}
		procs[f.File.ID] = f.Alive
	}
	for _, t := range mpTypes {
		ch <- prometheus.MustNewConstMetric(mpFilesDesc, prometheus.GaugeValue, files[t], dir, t)
		ch <- prometheus.MustNewConstMetric(mpFileBytesDesc, prometheus.GaugeValue, size[t], dir, t)
		ch <- prometheus.MustNewConstMetric(mpUsedBytesDesc, prometheus.GaugeValue, used[t], dir, t)
		if m.cfg.Options.ProcRoot != "" {
			ch <- prometheus.MustNewConstMetric(mpDeadFilesDesc, prometheus.GaugeValue, dead[t], dir, t)
		}
	}
	states := map[int8]float64{}
	for _, a := range procs {
		states[a]++
	}
	for a, name := range map[int8]string{1: "alive", 0: "dead", -1: "unknown"} {
		ch <- prometheus.MustNewConstMetric(mpProcessesDesc, prometheus.GaugeValue, states[a], dir, name)
	}
	ch <- prometheus.MustNewConstMetric(mpEntriesDesc, prometheus.GaugeValue, float64(snap.Entries), dir)
	ch <- prometheus.MustNewConstMetric(mpFamiliesDesc, prometheus.GaugeValue, float64(len(snap.Families)), dir)
	if m.cfg.Options.DropDeadLiveGauges {
		ch <- prometheus.MustNewConstMetric(mpDeadLiveDesc, prometheus.GaugeValue, float64(snap.DroppedDeadLive), dir)
	}
}

// emitApp sends the application's merged series and returns what it had to leave out. A
// family whose name claims refuses is left out whole (reason name_conflict).
func (m *Multiproc) emitApp(snap *multiproc.Snapshot, dir string, ch chan<- prometheus.Metric, claims *nameClaims) map[string]int {
	drops := map[string]int{}
	m.mu.Lock()
	m.epoch++
	m.mu.Unlock()
	var names, values []string
	for fi := range snap.Families {
		f := &snap.Families[fi]
		name := f.Name
		if f.Type == multiproc.TypeCounter {
			name += "_total"
		}
		if !claims.claim(name, f.Type, f.Help, m.cfg.DirLabel) {
			drops[mpReasonNameConflict] += len(f.Series)
			m.logConflict(name)
			continue
		}
	series:
		for si := range f.Series {
			s := &f.Series[si]
			names, values = names[:0], values[:0]
			for _, l := range s.Labels {
				if m.cfg.DirLabel && l.Name == MultiprocKind.SourceLabel {
					drops[mpReasonLabelConflict]++
					continue series
				}
				names = append(names, l.Name)
				values = append(values, l.Value)
			}
			if m.cfg.DirLabel {
				names = append(names, MultiprocKind.SourceLabel)
				values = append(values, dir)
			}
			desc := m.desc(name, f.Help, f.Type, names)
			var metric prometheus.Metric
			var err error
			switch f.Type {
			case multiproc.TypeCounter:
				metric, err = prometheus.NewConstMetric(desc, prometheus.CounterValue, s.Value, values...)
			case multiproc.TypeGauge:
				metric, err = prometheus.NewConstMetric(desc, prometheus.GaugeValue, s.Value, values...)
			case multiproc.TypeSummary:
				count := uint64(0)
				if s.Count > 0 && s.Count < math.MaxUint64 { // NaN and negatives (corruption) become 0
					count = uint64(s.Count)
				}
				metric, err = prometheus.NewConstSummary(desc, count, s.Sum, nil, values...)
			case multiproc.TypeHistogram:
				metric, err = m.histogram(desc, s, values)
			}
			if err != nil {
				drops[mpReasonInvalid]++
				continue
			}
			ch <- metric
		}
	}
	m.sweepDescs()
	return drops
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

func (m *Multiproc) histogram(desc *prometheus.Desc, s *multiproc.Series, values []string) (prometheus.Metric, error) {
	// NewConstMetric validates desc and the label values; the histogram reuses its checks.
	if _, err := prometheus.NewConstMetric(desc, prometheus.UntypedValue, 0, values...); err != nil {
		return nil, err
	}
	return &floatHistogram{desc: desc, labels: prometheus.MakeLabelPairs(desc, values), s: s}, nil
}

// desc returns the cached Desc of a family and label set, building it on first use.
func (m *Multiproc) desc(name, help, typ string, labels []string) *prometheus.Desc {
	var b strings.Builder
	b.Grow(len(name) + len(help) + len(typ) + 16*len(labels))
	b.WriteString(name)
	b.WriteByte(0)
	b.WriteString(typ)
	b.WriteByte(0)
	b.WriteString(help)
	for _, l := range labels {
		b.WriteByte(0)
		b.WriteString(l)
	}
	k := b.String()
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.descs[k]
	if e == nil {
		e = &descEntry{desc: prometheus.NewDesc(name, help, append([]string(nil), labels...), nil)}
		m.descs[k] = e
	}
	e.epoch = m.epoch
	return e.desc
}

// sweepDescs forgets Descs unused by the last scrape once they are many.
func (m *Multiproc) sweepDescs() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.descs) < 4096 {
		return
	}
	for k, e := range m.descs {
		if e.epoch != m.epoch {
			delete(m.descs, k)
		}
	}
}
