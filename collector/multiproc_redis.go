package collector

import (
	"context"
	"log/slog"
	"sync"

	"github.com/wsgi-exporter/wsgi_exporter/redisstore"
)

// MultiprocRedisKind is gunicorn-prometheus-exporter's Redis store: every worker's
// prometheus_client values, merged as a multiprocess directory is (series:
// multiproc_redis_up and multiproc_redis_metrics.go; docs/redis.md).
var MultiprocRedisKind = Kind{
	Name:        "multiproc_redis",
	SourceLabel: "redis_url",
	Title:       "gunicorn-prometheus-exporter Redis store",
}

// MultiprocRedisOptions are the settings of a Redis store source.
type MultiprocRedisOptions struct {
	Target  redisstore.Target  // the server (its URL is the source's address)
	Options redisstore.Options // how the store is read
	// URLLabel adds the redis_url label to the application's series. Set it when more than
	// one store is configured, so that their series stay apart.
	URLLabel bool
	// Logger receives the store's problems (a reason of dropped entries is logged when it
	// first appears).
	Logger *slog.Logger
}

// MultiprocRedis is a Source that serves the merged metrics of a Redis store, plus the
// store's health.
type MultiprocRedis struct {
	cfg    Config
	opts   MultiprocRedisOptions
	store  *redisstore.Store
	logger *slog.Logger

	mu        sync.Mutex
	dropped   map[string]float64 // by reason, since start
	conflicts map[string]bool    // family names already logged as conflicting
}

// NewMultiprocRedis returns the source for opts.Target. The address is the URL without its
// user information, whatever cfg.Address says.
func NewMultiprocRedis(cfg Config, opts MultiprocRedisOptions) (Source, error) {
	cfg, err := cfg.forKind(MultiprocRedisKind)
	if err != nil {
		return nil, err
	}
	store, err := redisstore.New(opts.Target, opts.Options)
	if err != nil {
		return nil, err
	}
	cfg.Address = store.Address()
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &MultiprocRedis{
		cfg:       cfg,
		opts:      opts,
		store:     store,
		logger:    logger.With("kind", MultiprocRedisKind.Name, "source", cfg.SourceName()),
		dropped:   map[string]float64{},
		conflicts: map[string]bool{},
	}
	for _, r := range mrDropReasons {
		s.dropped[r] = 0
	}
	return s, nil
}

func (s *MultiprocRedis) Kind() Kind     { return MultiprocRedisKind }
func (s *MultiprocRedis) Config() Config { return s.cfg }

// Scrape reads and merges the store and writes its series. Through an Exporter the store is
// read with scrapeApp instead; Scrape serves callers of a single source (tests).
func (s *MultiprocRedis) Scrape(ctx context.Context, w *Writer) error {
	emit, err := s.scrapeApp(ctx)
	if err != nil {
		return err
	}
	emit(w, nil)
	return nil
}

// scrapeApp reads and merges the store; its series are written after the other sources'
// (see appSource), so that no application family takes a name already served.
func (s *MultiprocRedis) scrapeApp(ctx context.Context) (appEmit, error) {
	snap, err := s.store.Read(ctx)
	if err != nil {
		return nil, err
	}
	s.noteDropped(snap.Dropped)
	return func(w *Writer, names *nameClaims) { s.translate(w, snap, names) }, nil
}

// noteDropped counts the entries left out and logs each reason when it first appears.
func (s *MultiprocRedis) noteDropped(dropped map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for r, n := range dropped {
		if n > 0 && s.dropped[r] == 0 {
			s.logger.Warn("dropping entries of the Redis store", "reason", r, "count", n)
		}
		s.dropped[r] += float64(n)
	}
}

// logConflict logs, once per name, an application family left out for its name.
func (s *MultiprocRedis) logConflict(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conflicts[name] || len(s.conflicts) >= 1024 {
		return
	}
	s.conflicts[name] = true
	s.logger.Warn("dropping an application metric family: its name is already served by the exporter or an earlier source",
		"family", name)
}
