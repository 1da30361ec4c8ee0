package collector

import "sort"

// slotTracker gives each worker pid a small stable number, its slot, so that per-worker
// series survive worker restarts without one new series per pid: a new worker takes the
// lowest free slot. The number of slots is bounded by the most workers alive at once.
type slotTracker struct {
	byPID map[int]int
}

// assign returns the slot of every pid and the pids that were not known before. pids of
// workers that are gone free their slots first.
func (t *slotTracker) assign(pids []int) (slots map[int]int, fresh map[int]bool) {
	fresh = map[int]bool{}
	if t.byPID == nil {
		t.byPID = map[int]int{}
	}
	alive := make(map[int]bool, len(pids))
	for _, p := range pids {
		alive[p] = true
	}
	for p := range t.byPID {
		if !alive[p] {
			delete(t.byPID, p)
		}
	}
	used := make(map[int]bool, len(t.byPID))
	for _, s := range t.byPID {
		used[s] = true
	}
	sorted := append([]int(nil), pids...)
	sort.Ints(sorted)
	next := 0
	for _, p := range sorted {
		if _, ok := t.byPID[p]; ok {
			continue
		}
		for used[next] {
			next++
		}
		t.byPID[p] = next
		used[next] = true
		fresh[p] = true
	}
	slots = make(map[int]int, len(t.byPID))
	for p, s := range t.byPID {
		slots[p] = s
	}
	return slots, fresh
}

// reset forgets every pid (a new master).
func (t *slotTracker) reset() { t.byPID = nil }
