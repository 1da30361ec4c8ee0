package uwsgi

import (
	"fmt"
	"strings"
	"unsafe"
)

// Limits caps what a decode keeps of one stats document, so that the memory a document costs
// has a bound whatever it holds (docs/uwsgi.md states the bound). Entries past a cap are read
// and left out, counted in Stats.Dropped; a zero field means its default.
type Limits struct {
	Workers  int // entries of "workers"; default 4096
	Apps     int // entries of "apps", all workers together; default 16384
	Cores    int // entries of "cores", all workers together; default 65536
	Sockets  int // default 1024
	Caches   int // default 1024
	Spoolers int // default 1024
	// Metrics caps the entries of "metrics" kept. uWSGI's built-in per-worker and per-core
	// metrics (worker.<N>.…) repeat the worker fields: they are never kept, nor counted.
	Metrics int // default 16384
	Locks   int // lock objects and their entries together; default 1024
	Daemons int // default 1024
	Crons   int // default 1024
	// StringBytes caps one string: a longer one is cut to its first StringBytes bytes (at a
	// character boundary).
	StringBytes int // default 1024
	// TotalStringBytes caps the strings kept of one document together, each counted as its
	// length + 16. Once it is spent, further strings are kept empty. Empty strings and a
	// string equal to the one before it in the same field (a mountpoint repeated by every
	// worker) cost nothing.
	TotalStringBytes int // default 1 MiB
}

// DefaultLimits are the caps used when a Limits field is zero.
var DefaultLimits = Limits{
	Workers:          4096,
	Apps:             16384,
	Cores:            65536,
	Sockets:          1024,
	Caches:           1024,
	Spoolers:         1024,
	Metrics:          16384,
	Locks:            1024,
	Daemons:          1024,
	Crons:            1024,
	StringBytes:      1024,
	TotalStringBytes: 1 << 20,
}

// withDefaults fills the zero (or negative) fields of l from DefaultLimits.
func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.Workers, DefaultLimits.Workers)
	def(&l.Apps, DefaultLimits.Apps)
	def(&l.Cores, DefaultLimits.Cores)
	def(&l.Sockets, DefaultLimits.Sockets)
	def(&l.Caches, DefaultLimits.Caches)
	def(&l.Spoolers, DefaultLimits.Spoolers)
	def(&l.Metrics, DefaultLimits.Metrics)
	def(&l.Locks, DefaultLimits.Locks)
	def(&l.Daemons, DefaultLimits.Daemons)
	def(&l.Crons, DefaultLimits.Crons)
	def(&l.StringBytes, DefaultLimits.StringBytes)
	def(&l.TotalStringBytes, DefaultLimits.TotalStringBytes)
	return l
}

// Dropped counts what a decode left out of a document to stay within its Limits. The zero
// value means the document was kept whole.
type Dropped struct {
	Workers, Apps, Cores, Sockets, Caches, Spoolers, Metrics, Locks, Daemons, Crons int // entries left out
	// Strings counts strings cut to Limits.StringBytes or emptied once
	// Limits.TotalStringBytes was spent.
	Strings int
}

// Each calls f for every part of the document with entries left out, in a fixed order, with
// the part's JSON name ("workers", "apps", …, "strings") and the count.
func (d *Dropped) Each(f func(part string, n int)) {
	for _, p := range []struct {
		name string
		n    int
	}{
		{"workers", d.Workers}, {"apps", d.Apps}, {"cores", d.Cores}, {"sockets", d.Sockets},
		{"caches", d.Caches}, {"spoolers", d.Spoolers}, {"metrics", d.Metrics}, {"locks", d.Locks},
		{"daemons", d.Daemons}, {"crons", d.Crons}, {"strings", d.Strings},
	} {
		if p.n > 0 {
			f(p.name, p.n)
		}
	}
}

// Any reports whether anything was left out.
func (d *Dropped) Any() bool { return *d != Dropped{} }

// String lists what was left out, for a log line: "workers 5904, strings 2"; "" when nothing.
func (d *Dropped) String() string {
	var b strings.Builder
	d.Each(func(part string, n int) {
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", part, n)
	})
	return b.String()
}

// MaxAlloc is the most memory one decode under l allocates, whatever the document: a bound
// on everything the decode allocates (garbage included), so also on what it holds at any
// moment. docs/uwsgi.md states the formula; tests check it against hostile documents.
//
//	read buffer and scratch  32 KiB + StringBytes + 4 KiB
//	lists                    4.5 x sum of cap x element size (growth by doubling: under 4x the
//	                         entries kept, plus rounding to allocation size classes, at most 1/8)
//	maps                     256 bytes per metric and per lock entry
//	strings                  TotalStringBytes (each string counts its length + 16)
func (l Limits) MaxAlloc() int64 {
	l = l.withDefaults()
	var (
		lists = int64(l.Workers)*int64(unsafe.Sizeof(Worker{})) +
			int64(l.Apps)*int64(unsafe.Sizeof(App{})) +
			int64(l.Cores)*int64(unsafe.Sizeof(Core{})) +
			int64(l.Sockets)*int64(unsafe.Sizeof(Socket{})) +
			int64(l.Caches)*int64(unsafe.Sizeof(Cache{})) +
			int64(l.Spoolers)*int64(unsafe.Sizeof(Spooler{})) +
			int64(l.Daemons)*int64(unsafe.Sizeof(Daemon{})) +
			int64(l.Crons)*int64(unsafe.Sizeof(Cron{})) +
			int64(l.Locks)*int64(unsafe.Sizeof(map[string]int64(nil)))
		maps = 256 * int64(l.Metrics+l.Locks)
	)
	return streamBuffer + int64(l.StringBytes) + 4<<10 + lists*9/2 + maps + int64(l.TotalStringBytes)
}
