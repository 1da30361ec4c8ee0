// Package redisstore reads the Redis store of gunicorn-prometheus-exporter, where every
// worker process keeps its prometheus_client values, and merges it as prometheus_client's
// MultiProcessCollector merges the .db files of a multiprocess directory: each worker, metric
// type and gauge mode is one file, fed to the multiproc package's merge.
//
// It is a system package: protocol and typed data, no metrics.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
	"github.com/wsgi-exporter/wsgi_exporter/internal/tlsconfig"
	"github.com/wsgi-exporter/wsgi_exporter/multiproc"
)

// Reasons an entry (a metric key and its metadata) is left out of the merge. They are label
// values of the exporter's metrics; the merge's own (multiproc.EntryReasonBadSample,
// EntryReasonTypeClash) come on top.
const (
	ReasonBadName       = "bad_name"       // a key the scan matched whose name is not PREFIX:TYPE:PID:metric:HASH
	ReasonForeignPrefix = "foreign_prefix" // a key of a longer prefix (PREFIX:more:TYPE:PID:metric:HASH)
	ReasonNoMetadata    = "no_metadata"    // no metadata hash, or one without original_key
	ReasonBadKey        = multiproc.EntryReasonBadKey
	ReasonBadValue      = "bad_value"  // value or timestamp missing or not a number
	ReasonWrongType     = "wrong_type" // the key (or its metadata) is not a hash
	ReasonNoMode        = "no_mode"    // a bare "gauge" key without a mode (see docs/redis.md)
	ReasonStateFull     = "state_full" // a vanished entry's value could not be kept: too many kept already
)

// Reasons lists the reasons of this package, for counters initialised at 0.
var Reasons = []string{
	ReasonBadName, ReasonForeignPrefix, ReasonNoMetadata, ReasonBadKey, ReasonBadValue,
	ReasonWrongType, ReasonNoMode, ReasonStateFull,
}

// Options tune a Store.
type Options struct {
	// Prefix is the writer's key prefix (REDIS_KEY_PREFIX; trailing colons are dropped, as
	// the writer drops them). Empty: DefaultPrefix.
	Prefix string
	// MaxKeys caps the metric keys of one read; more fail the read (reason too_large)
	// rather than serve a partial merge. It also caps the vanished entries kept. 0: 500000.
	MaxKeys int
	// MaxBytes caps the bytes received from Redis in one read; more fail it (too_large).
	// 0: no limit.
	MaxBytes int64
	// DropVanished serves only what Redis holds now: a counter, histogram or summary entry
	// whose key expired (or was deleted) no longer counts. By default its last value keeps
	// counting, as the entry would in a .db file (see Hold).
	DropVanished bool
	// ResumeWindow is how long a vanished entry is kept per worker, so that a worker that
	// writes again (an idle one whose keys expired) continues from its own value instead of
	// being counted twice. After it, the value is folded into its series for good. 0: 1h.
	ResumeWindow time.Duration
	// ScanCount is the COUNT hint of SCAN (0: 1000); Batch the metric keys read per
	// pipeline (0: 1000).
	ScanCount, Batch int
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
}

// Snapshot is one read of the store.
type Snapshot struct {
	Families []multiproc.Family
	// Keys counts the metric keys read, by type; PIDs the distinct writing processes.
	Keys map[string]int
	PIDs int
	// Held counts the vanished entries kept per worker, Folded the series totals holding
	// the values of vanished entries past the resume window (see Options.DropVanished).
	Held, Folded int
	// Entries counts the samples merged: keys read, held and folded.
	Entries int
	// Dropped counts the entries left out, by reason.
	Dropped map[string]int
	// Bytes received from Redis, round trips (pipelines and commands sent).
	Bytes      int64
	RoundTrips int
}

// Store reads one Redis database. One Read runs at a time; it keeps, between reads, the
// metadata of the keys it has seen and the values of vanished entries.
type Store struct {
	t      *target
	opts   Options
	client *redis.Client
	budget *budget
	sem    chan struct{}
	state  *state
}

// New returns a store for t; it connects at the first read.
func New(t Target, opts Options) (*Store, error) {
	tg, err := parseTarget(t)
	if err != nil {
		return nil, err
	}
	opts.Prefix = CleanPrefix(opts.Prefix)
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.MaxKeys <= 0 {
		opts.MaxKeys = 500000
	}
	if opts.ResumeWindow <= 0 {
		opts.ResumeWindow = time.Hour
	}
	if opts.ScanCount <= 0 {
		opts.ScanCount = 1000
	}
	if opts.Batch <= 0 {
		opts.Batch = 1000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Store{t: tg, opts: opts, budget: &budget{}, sem: make(chan struct{}, 1), state: newState(opts.MaxKeys)}
	s.client = s.newClient()
	return s, nil
}

func (s *Store) newClient() *redis.Client {
	ro := *s.t.opts
	ro.Dialer = dialer(&ro, s.budget)
	return redis.NewClient(&ro)
}

// Address is the URL without user information, for labels and logs.
func (s *Store) Address() string { return s.t.redacted }

// Prefix is the key prefix read.
func (s *Store) Prefix() string { return s.opts.Prefix }

// Close closes the connections.
func (s *Store) Close() error { return s.client.Close() }

// Read reads and merges every metric key of the prefix under ctx.
func (s *Store) Read(ctx context.Context) (*Snapshot, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fetch.Errorf(fetch.ReasonTimeout, "before reading %s (a previous read still running?): %w", s.t.redacted, ctx.Err())
	}
	defer func() { <-s.sem }()
	s.budget.reset(s.opts.MaxBytes)
	r := &read{s: s, ctx: ctx, snap: &Snapshot{Keys: map[string]int{}, Dropped: map[string]int{}}}
	if err := r.scan(); err != nil {
		err = s.classify(err)
		if fetch.ReasonOf(err) == fetch.ReasonConnect {
			// A pool whose dials failed answers with the last dial error for a while
			// before it dials again: start afresh, so that the next read dials.
			_ = s.client.Close()
			s.client = s.newClient()
		}
		return nil, err
	}
	r.snap.Bytes = s.budget.used.Load()
	s.state.finish(r, s.opts)
	return r.snap, nil
}

// classify gives a failed read its reason, with the redacted address in the message.
func (s *Store) classify(err error) error {
	var tl *errTooLarge
	var fe *fetch.Error
	var re redis.Error
	switch {
	case errors.As(err, &fe):
		return err
	case errors.As(err, &tl):
		return fetch.Errorf(fetch.ReasonTooLarge, "reading %s: %w", s.t.redacted, err)
	case tlsconfig.IsHandshakeFailure(err):
		return fetch.Errorf(fetch.ReasonConnect, "reading %s: TLS handshake: %w", s.t.redacted, err)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return fetch.Errorf(fetch.ReasonTimeout, "reading %s: %w", s.t.redacted, err)
	case errors.As(err, &re) && isAuthError(re.Error()):
		// A wrong password or user, or a command the ACL user may not run.
		return fetch.Errorf(fetch.ReasonPermission, "reading %s: %w", s.t.redacted, err)
	case errors.As(err, &re):
		return fetch.Errorf(fetch.ReasonOther, "reading %s: %w", s.t.redacted, err)
	}
	return fetch.Wrap(fetch.ReasonOf(err), fmt.Errorf("reading %s: %w", s.t.redacted, err))
}

func isAuthError(msg string) bool {
	for _, p := range []string{"NOAUTH", "WRONGPASS", "NOPERM", "ERR AUTH", "ERR invalid password", "ERR Client sent AUTH"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}
