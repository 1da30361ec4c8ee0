package collector

import (
	"context"
	"sync"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// maxReadsPerSource bounds the reads of one source that run at once, whatever the number of
// concurrent requests. Each request still reads the source itself (nothing is shared between
// requests), but a target that answers with endless bytes costs at most this many times the
// size cap, not the in-flight request limit times it.
const maxReadsPerSource = 2

// sourceLimits holds a semaphore per source (kind and name), kept while a read holds or
// waits for it, so that glob targets that come and go leave nothing behind.
type sourceLimits struct {
	mu    sync.Mutex
	slots map[string]*sourceSlot
}

type sourceSlot struct {
	sem   chan struct{}
	users int
}

// acquire waits for a read slot of the source until ctx is done; release must be called
// once when it returns no error.
func (l *sourceLimits) acquire(ctx context.Context, s Source) (release func(), err error) {
	key := s.Kind().Name + "\x00" + s.Config().SourceName()
	l.mu.Lock()
	if l.slots == nil {
		l.slots = map[string]*sourceSlot{}
	}
	slot := l.slots[key]
	if slot == nil {
		slot = &sourceSlot{sem: make(chan struct{}, maxReadsPerSource)}
		l.slots[key] = slot
	}
	slot.users++
	l.mu.Unlock()
	done := func() {
		l.mu.Lock()
		slot.users--
		if slot.users == 0 {
			delete(l.slots, key)
		}
		l.mu.Unlock()
	}
	select {
	case slot.sem <- struct{}{}:
		return func() { <-slot.sem; done() }, nil
	case <-ctx.Done():
		done()
		return nil, fetch.Errorf(fetch.ReasonTimeout, "waiting for the %d reads of this source already running: %w", maxReadsPerSource, ctx.Err())
	}
}
