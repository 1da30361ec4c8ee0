package redisstore

import (
	"context"
	"errors"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
	"github.com/wsgi-exporter/wsgi_exporter/multiproc"
)

// read is one Read in progress.
type read struct {
	s     *Store
	ctx   context.Context
	snap  *Snapshot
	epoch uint64              // this read's number (state.epoch once it succeeds)
	fresh map[string]struct{} // names met for the first time (the scan may return one twice)
	keys  int                 // distinct names the scan returned
	live  []live
	pids  map[string]struct{}
}

// live is a metric key read in this read.
type live struct {
	name  string
	e     *entry
	v, ts float64
	prev  float64 // the entry's value at the previous read, or when it vanished
	hasPv bool
}

// pending is a key name the scan returned, waiting to be read.
type pending struct {
	name string
	e    *entry // known from an earlier read; nil: its metadata is read along
	n    Name
}

// scan runs SCAN over the prefix's metric keys and reads them in pipelines: each pipeline
// carries the value reads of the keys met so far (and the metadata reads of the keys never
// met before) together with the next SCAN, so a read costs about one round trip per page.
func (r *read) scan() error {
	s := r.s
	pattern := ScanPattern(s.opts.Prefix)
	r.epoch = s.state.epoch + 1
	r.fresh = map[string]struct{}{}
	r.pids = map[string]struct{}{}
	var cursor uint64
	started := false
	var queue []pending
	for {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		n := min(len(queue), s.opts.Batch)
		batch := queue[:n]
		queue = queue[n:]
		scanMore := !started || cursor != 0
		if n == 0 && !scanMore {
			break
		}
		pipe := s.client.Pipeline()
		vals := make([]*redis.SliceCmd, n)
		metas := make([]*redis.SliceCmd, n)
		for i, p := range batch {
			vals[i] = pipe.HMGet(r.ctx, p.name, fieldValue, fieldTimestamp)
			if p.e == nil {
				metas[i] = pipe.HMGet(r.ctx, p.n.Meta, fieldKey, fieldMode)
			}
		}
		var sc *redis.ScanCmd
		if scanMore {
			sc = pipe.Scan(r.ctx, cursor, pattern, int64(s.opts.ScanCount))
		}
		_, err := pipe.Exec(r.ctx)
		r.snap.RoundTrips++
		if err != nil && !isWrongType(err) {
			return err
		}
		if sc != nil {
			keys, next, err := sc.Result()
			if err != nil {
				return err
			}
			started, cursor = true, next
			for _, k := range keys {
				e := s.state.lookup(k)
				if e != nil {
					if e.queued == r.epoch {
						continue
					}
					e.queued = r.epoch
				} else {
					if _, dup := r.fresh[k]; dup {
						continue
					}
					r.fresh[k] = struct{}{}
				}
				if r.keys++; r.keys > s.opts.MaxKeys {
					return fetch.Errorf(fetch.ReasonTooLarge, "%s holds more than the %d metric keys a read may take (--redis.max-keys)", s.t.redacted, s.opts.MaxKeys)
				}
				if e != nil {
					queue = append(queue, pending{name: k, e: e})
					continue
				}
				nm, reason := ParseName(s.opts.Prefix, k)
				if reason != "" {
					r.snap.Dropped[reason]++
					continue
				}
				queue = append(queue, pending{name: k, n: nm})
			}
		}
		for i, p := range batch {
			if err := r.take(p, vals[i], metas[i]); err != nil {
				return err
			}
		}
	}
	r.snap.PIDs = len(r.pids)
	return nil
}

// take adds one key's replies to the read. A key gone since the scan returned it (expired
// in between) is as if the scan had not met it.
func (r *read) take(p pending, val, meta *redis.SliceCmd) error {
	vs, err := val.Result()
	if err != nil {
		if isWrongType(err) {
			r.snap.Dropped[ReasonWrongType]++
			return nil
		}
		return err
	}
	if len(vs) != 2 || (vs[0] == nil && vs[1] == nil) {
		return nil
	}
	vt, ok1 := vs[0].(string)
	tt, ok2 := vs[1].(string)
	v, ok3 := ParseFloat(vt)
	ts, ok4 := ParseFloat(tt)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		r.snap.Dropped[ReasonBadValue]++
		return nil
	}
	e := p.e
	if e == nil {
		ms, err := meta.Result()
		if err != nil {
			if isWrongType(err) {
				r.snap.Dropped[ReasonWrongType]++
				return nil
			}
			return err
		}
		raw, _ := ms[0].(string)
		if raw == "" {
			r.snap.Dropped[ReasonNoMetadata]++
			return nil
		}
		n := p.n
		if n.Type == multiproc.TypeGauge && n.Mode == "" {
			// A bare gauge key: the mode, if anywhere, is in the metadata.
			mode, _ := ms[1].(string)
			if !isMode(mode) {
				r.snap.Dropped[ReasonNoMode]++
				return nil
			}
			n.Mode = mode
		}
		k, raw := r.s.state.key(raw)
		if k == nil {
			r.snap.Dropped[ReasonBadKey]++
			return nil
		}
		e = newEntry(p.name, n, raw, k)
	}
	r.live = append(r.live, live{name: p.name, e: e, v: v, ts: ts})
	r.snap.Keys[e.file.Type]++
	r.pids[e.file.ID] = struct{}{}
	return nil
}

// isWrongType recognises the error reply to a read of a key that is not a hash. Every other
// error reply (NOAUTH, NOPERM, a failed SCAN) fails the read.
func isWrongType(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && strings.HasPrefix(re.Error(), "WRONGTYPE")
}
