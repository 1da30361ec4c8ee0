package collector

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// planned is one source of a request: a source to scrape, or a glob whose expansion failed.
type planned struct {
	src    Source
	consts *sourceLabels // its constant labels
	err    error
}

// globState remembers, per configured Expander, what it expanded to last time and whether an
// expansion is still running (a hung filesystem): a new one is not started on top of it.
type globState struct {
	busy atomic.Bool
	mu   sync.Mutex
	last map[string]bool // names of the sources of the last successful expansion
}

// plan lists what one request scrapes: every plain source, and what every glob expands to now.
// Globs are expanded concurrently under the request's deadline. A target that an explicit
// source or an earlier glob already covers is scraped once, so no series is duplicated. The
// error counters of targets that vanished from a glob are deleted, so that vassals coming and
// going do not leave series behind forever.
func (e *Exporter) plan(ctx context.Context, timeout time.Duration, start time.Time) []planned {
	type expansion struct {
		srcs []Source
		err  error
	}
	exps := make([]expansion, len(e.sources))
	var wg sync.WaitGroup
	for i, s := range e.sources {
		if x, ok := s.(Expander); ok {
			wg.Go(func() {
				srcs, err := e.expand(ctx, x, e.globs[i], start.Add(sourceTimeout(s, timeout)))
				exps[i] = expansion{srcs, err}
			})
		}
	}
	wg.Wait()

	taken := map[string]bool{}
	key := func(s Source) string { return s.Kind().Name + "\x00" + s.Config().SourceName() }
	for _, s := range e.sources {
		if _, ok := s.(Expander); !ok {
			taken[key(s)] = true
		}
	}
	var out []planned
	for i, s := range e.sources {
		if _, ok := s.(Expander); !ok {
			out = append(out, planned{src: s, consts: e.consts[i]})
			continue
		}
		x := exps[i]
		if x.err == nil && len(x.srcs) == 0 {
			x.err = fetch.Errorf(fetch.ReasonNotFound, "%s matches nothing", s.Config().Address)
		}
		if x.err != nil {
			out = append(out, planned{src: s, consts: e.consts[i], err: x.err})
		}
		now := map[string]bool{}
		for _, t := range x.srcs {
			now[t.Config().SourceName()] = true
			if taken[key(t)] {
				e.logger.Debug("target already scraped through another source", "kind", t.Kind().Name, "source", t.Config().SourceName(), "glob", s.Config().SourceName())
				continue
			}
			if !utf8.ValidString(t.Config().SourceName()) { // a label value must be UTF-8
				e.logger.Debug("target left out: its name is not UTF-8", "kind", t.Kind().Name, "glob", s.Config().SourceName(), "target", t.Config().SourceName())
				continue
			}
			taken[key(t)] = true
			e.initCounters(t)
			out = append(out, planned{src: t, consts: e.consts[i]})
		}
		if fetch.ReasonOf(x.err) != fetch.ReasonNotFound && x.err != nil {
			continue // the glob could not be read: keep what it had
		}
		e.forgetVanished(s.Kind().Name, e.globs[i], now, taken)
	}
	return out
}

// expand runs one glob's expansion under the deadline; a hung expansion is abandoned, and
// while it still runs later requests fail fast instead of piling up goroutines.
func (e *Exporter) expand(ctx context.Context, x Expander, g *globState, deadline time.Time) ([]Source, error) {
	if !g.busy.CompareAndSwap(false, true) {
		return nil, fetch.Errorf(fetch.ReasonTimeout, "%s: the previous expansion is still running", x.Config().Address)
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	return guarded(ctx, "expanding "+x.Config().Address, func() ([]Source, error) {
		defer g.busy.Store(false)
		return x.Expand(ctx)
	})
}

// forgetVanished deletes the counters and status of targets a glob no longer matches, unless
// another source of this request covers them.
func (e *Exporter) forgetVanished(kind string, g *globState, now, taken map[string]bool) {
	g.mu.Lock()
	prev := g.last
	g.last = now
	g.mu.Unlock()
	for name := range prev {
		if now[name] || taken[kind+"\x00"+name] {
			continue
		}
		e.forgetSource(kind, name)
	}
}
