package uwsgi

import (
	"bytes"
	"io"
	"unicode/utf8"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// Decode parses a stats document held in memory, under DefaultLimits. Anything that is not one
// JSON object of the expected shape is an error with reason decode.
func Decode(b []byte) (*Stats, error) {
	return decode(newBytesScanner(b), Limits{}, nil)
}

// DecodeFrom reads a stats document from r as it arrives and parses it, keeping what lim
// allows (zero fields: DefaultLimits) and never more of the document than one read buffer
// (32 KiB). A document longer than maxSize bytes fails with reason too_large; a failed read
// keeps its reason (a deadline passed: timeout); a bad document fails with reason decode.
//
// What is kept and how long it takes depend on the document only through lim and maxSize:
// request variables (cores[].vars), unknown keys and uWSGI's built-in worker metrics are read
// past, never stored.
func DecodeFrom(r io.Reader, maxSize int64, lim Limits) (*Stats, error) {
	b := scanBuffers.Get().(*scanBuf)
	defer scanBuffers.Put(b)
	return decode(&scanner{r: r, buf: b.read[:0], max: maxSize, scratch: b.scratch[:0]}, lim, b)
}

// decoder is a scanner with the stats schema: what remains of each cap, what was left out,
// and the last string of each repeated field (so that a value every worker repeats is stored
// once).
type decoder struct {
	scanner
	lim  Limits // the caps
	left Limits // what remains of them
	drop Dropped
	last struct {
		status, mountpoint, chdir, proto, sockName, cacheName, hash, spoolDir, legion string
	}
}

// decode reads one document from s; keep, if not nil, gets back s's buffers (the scratch may
// have grown) for the next decode.
func decode(s *scanner, lim Limits, keep *scanBuf) (*Stats, error) {
	lim = lim.withDefaults()
	d := &decoder{scanner: *s, lim: lim, left: lim}
	if keep != nil {
		defer func() {
			if cap(d.scratch) <= 8<<10 { // a larger string cap's scratch is not kept
				keep.scratch = d.scratch[:0]
			}
		}()
	}
	c, ok := d.peek()
	if !ok {
		if d.err == nil {
			d.err = fetch.Errorf(fetch.ReasonDecode, "empty stats document")
		}
		return nil, d.err
	}
	if c != '{' {
		d.fail("the stats document is not a JSON object")
		return nil, d.err
	}
	st := new(Stats)
	d.stats(st)
	if d.err == nil {
		d.end()
	}
	if d.err != nil {
		return nil, d.err
	}
	st.Dropped = d.drop
	return st, nil
}

// The keys of each object of the schema, for matching a key that differs in case (encoding/json
// matches keys case-insensitively when no key matches exactly; uWSGI writes lower case).
var (
	statsKeys   = keyList("version", "listen_queue", "listen_queue_errors", "signal_queue", "load", "pid", "uid", "gid", "cwd", "daemons", "locks", "caches", "metrics", "sockets", "workers", "spoolers", "crons")
	daemonKeys  = keyList("cmd", "pid", "respawns")
	cacheKeys   = keyList("name", "hash", "hashsize", "keysize", "max_items", "blocks", "blocksize", "items", "hits", "miss", "full", "last_modified_at")
	metricKeys  = keyList("type", "oid", "value")
	socketKeys  = keyList("name", "proto", "queue", "max_queue", "shared", "can_offload")
	workerKeys  = keyList("id", "pid", "accepting", "requests", "delta_requests", "exceptions", "harakiri_count", "signals", "signal_queue", "status", "rss", "vsz", "running_time", "last_spawn", "respawn_count", "tx", "avg_rt", "apps", "cores")
	appKeys     = keyList("id", "modifier1", "mountpoint", "startup_time", "requests", "exceptions", "chdir")
	coreKeys    = keyList("id", "requests", "static_requests", "routed_requests", "offloaded_requests", "write_errors", "read_errors", "in_request")
	spoolerKeys = keyList("dir", "pid", "tasks", "respawns", "running")
	cronKeys    = keyList("minute", "hour", "day", "month", "week", "command", "unique", "legion", "pid", "started_at")
)

func keyList(names ...string) [][]byte {
	out := make([][]byte, len(names))
	for i, n := range names {
		out[i] = []byte(n)
	}
	return out
}

// maxKey is the longest object key of a schema object that is read in full: longer keys
// cannot match (the longest name, in its longest case-folded spelling, is shorter).
const maxKey = 64

// member reads the next key of a schema object and returns it as one of keys when it matches
// one exactly or case-insensitively; else the key as read (which matches none).
func (d *decoder) member(keys [][]byte) []byte {
	k, cut := d.key(maxKey)
	if cut || d.err != nil {
		return nil
	}
	for _, c := range k {
		if ('A' <= c && c <= 'Z') || c >= utf8.RuneSelf {
			for _, name := range keys {
				if bytes.EqualFold(k, name) {
					return name
				}
			}
			break
		}
	}
	return k
}

func (d *decoder) stats(st *Stats) {
	d.open('{', "an object")
	for first := true; d.next('}', &first); {
		switch string(d.member(statsKeys)) {
		case "version":
			d.text(&st.Version, nil)
		case "listen_queue":
			d.uint(&st.ListenQueue)
		case "listen_queue_errors":
			d.uint(&st.ListenQueueErrors)
		case "signal_queue":
			d.uint(&st.SignalQueue)
		case "load":
			d.uint(&st.Load)
		case "pid":
			d.int(&st.PID)
		case "uid":
			d.int(&st.UID)
		case "gid":
			d.int(&st.GID)
		case "cwd":
			d.text(&st.CWD, nil)
		case "daemons":
			d.daemons(st)
		case "locks":
			d.locks(st)
		case "caches":
			d.caches(st)
		case "metrics":
			d.metrics(st)
		case "sockets":
			d.sockets(st)
		case "workers":
			d.workers(st)
		case "spoolers":
			d.spoolers(st)
		case "crons":
			d.crons(st)
		default:
			d.skip()
		}
	}
}

// push appends a zero element to *list and returns it, growing the list by doubling up to
// limit elements: the allocations of a list of n elements add up to less than 2n elements.
func push[T any](list *[]T, limit int) *T {
	l := *list
	if len(l) == cap(l) {
		n := min(max(2*cap(l), 4), limit)
		if n <= len(l) {
			n = len(l) + 1
		}
		grown := make([]T, len(l), n)
		copy(grown, l)
		l = grown
	}
	l = l[:len(l)+1]
	var zero T
	l[len(l)-1] = zero
	*list = l
	return &l[len(l)-1]
}

// list reads an array into *list, one element per call of elem, within the cap whose
// remainder is *left (its entries past it are read, left out and counted in *dropped). null
// makes the list nil; an array replaces what a key seen earlier put there.
func list[T any](d *decoder, list *[]T, left, dropped *int, elem func(*T)) {
	if !d.open('[', "an array") {
		if d.err == nil {
			*list = nil
		}
		return
	}
	l := (*list)[:0]
	if l == nil {
		l = []T{} // [] is an empty list, not a missing one (uwsgi_worker_cores tells them apart)
	}
	for first := true; d.next(']', &first); {
		if *left == 0 {
			*dropped++
			d.skip()
			continue
		}
		*left--
		elem(push(&l, len(l)+*left+1))
	}
	*list = l
}

// text reads a string into *dst (null leaves it) within the string caps. *last is the value
// before it in the same field: an equal string is stored once.
func (d *decoder) text(dst, last *string) {
	c, ok := d.peek()
	switch {
	case !ok:
		if d.err == nil {
			d.failEnd()
		}
	case c == 'n':
		d.literal("null")
	case c == '"':
		b, cut := d.str(d.lim.StringBytes)
		if d.err != nil {
			return
		}
		*dst = d.keepString(b, cut, last)
	default:
		d.typeError("a string")
	}
}

// keepString returns b as a string within the document's string budget; cut says b was cut to
// Limits.StringBytes. A string the budget cannot pay for is kept empty.
func (d *decoder) keepString(b []byte, cut bool, last *string) string {
	if cut {
		d.drop.Strings++
	}
	if len(b) == 0 {
		return ""
	}
	if last != nil && *last == string(b) {
		return *last
	}
	cost := len(b) + 16
	if cost > d.left.TotalStringBytes {
		if !cut {
			d.drop.Strings++
		}
		return ""
	}
	d.left.TotalStringBytes -= cost
	s := string(b)
	if last != nil {
		*last = s
	}
	return s
}

// status reads a worker status: the statuses uWSGI writes are constants, not allocated.
func (d *decoder) status(dst *string) {
	if c, ok := d.peek(); ok && c == '"' {
		b, cut := d.str(d.lim.StringBytes)
		if d.err != nil {
			return
		}
		switch string(b) {
		case StatusIdle:
			*dst = StatusIdle
		case StatusBusy:
			*dst = StatusBusy
		case StatusCheap:
			*dst = StatusCheap
		case StatusPause:
			*dst = StatusPause
		default:
			*dst = d.keepString(b, cut, &d.last.status)
		}
		return
	}
	d.text(dst, nil)
}

func (d *decoder) daemons(st *Stats) {
	list(d, &st.Daemons, &d.left.Daemons, &d.drop.Daemons, func(x *Daemon) {
		if !d.open('{', "an object") {
			return
		}
		for first := true; d.next('}', &first); {
			switch string(d.member(daemonKeys)) {
			case "cmd":
				d.text(&x.Cmd, nil)
			case "pid":
				d.int(&x.PID)
			case "respawns":
				d.uint(&x.Respawns)
			default:
				d.skip()
			}
		}
	})
}

// locks reads "locks", a list of objects of lock name -> pid. The lock objects and their
// entries share one cap.
func (d *decoder) locks(st *Stats) {
	list(d, &st.Locks, &d.left.Locks, &d.drop.Locks, func(x *map[string]int64) {
		if !d.open('{', "an object") {
			return
		}
		m := map[string]int64{}
		for first := true; d.next('}', &first); {
			k, cut := d.key(d.lim.StringBytes)
			if d.err != nil {
				return
			}
			if _, ok := m[string(k)]; !ok {
				if d.left.Locks == 0 {
					d.drop.Locks++
					d.skip()
					continue
				}
				d.left.Locks--
			}
			name := d.keepString(k, cut, nil)
			var pid int64
			d.int(&pid)
			m[name] = pid
		}
		*x = m
	})
}

func (d *decoder) caches(st *Stats) {
	list(d, &st.Caches, &d.left.Caches, &d.drop.Caches, func(x *Cache) {
		if !d.open('{', "an object") {
			return
		}
		for first := true; d.next('}', &first); {
			switch string(d.member(cacheKeys)) {
			case "name":
				d.text(&x.Name, &d.last.cacheName)
			case "hash":
				d.text(&x.Hash, &d.last.hash)
			case "hashsize":
				d.uint(&x.HashSize)
			case "keysize":
				d.uint(&x.KeySize)
			case "max_items":
				d.uint(&x.MaxItems)
			case "blocks":
				d.uint(&x.Blocks)
			case "blocksize":
				d.uint(&x.BlockSize)
			case "items":
				d.uint(&x.Items)
			case "hits":
				d.uint(&x.Hits)
			case "miss":
				d.uint(&x.Miss)
			case "full":
				d.uint(&x.Full)
			case "last_modified_at":
				d.uint(&x.LastModifiedAt)
			default:
				d.skip()
			}
		}
	})
}

// builtinWorkerMetric reports uWSGI's own per-worker and per-core metric names
// (worker.<N>.…): they repeat the worker fields.
func builtinWorkerMetric(name []byte) bool {
	rest, ok := bytes.CutPrefix(name, []byte("worker."))
	if !ok {
		return false
	}
	i := 0
	for i < len(rest) && '0' <= rest[i] && rest[i] <= '9' {
		i++
	}
	return i > 0 && i < len(rest) && rest[i] == '.'
}

// metrics reads "metrics", an object of metric name -> metric. A key seen twice keeps its last
// value (also across two "metrics" keys, as encoding/json merges them).
func (d *decoder) metrics(st *Stats) {
	if !d.open('{', "an object") {
		if d.err == nil {
			st.Metrics = nil
		}
		return
	}
	if st.Metrics == nil {
		st.Metrics = map[string]Metric{}
	}
	for first := true; d.next('}', &first); {
		k, cut := d.key(d.lim.StringBytes)
		if d.err != nil {
			return
		}
		if builtinWorkerMetric(k) {
			d.skip()
			continue
		}
		if _, ok := st.Metrics[string(k)]; !ok {
			if d.left.Metrics == 0 {
				d.drop.Metrics++
				d.skip()
				continue
			}
			d.left.Metrics--
		}
		name := d.keepString(k, cut, nil)
		if name == "" && len(k) > 0 {
			d.drop.Metrics++ // no string budget left to name it
			d.skip()
			continue
		}
		var m Metric
		if d.open('{', "an object") {
			for first := true; d.next('}', &first); {
				switch string(d.member(metricKeys)) {
				case "type":
					var t int64
					d.int(&t)
					m.Type = MetricType(t)
				case "oid":
					d.text(&m.OID, nil)
				case "value":
					d.int(&m.Value)
				default:
					d.skip()
				}
			}
		}
		st.Metrics[name] = m
	}
}

func (d *decoder) sockets(st *Stats) {
	list(d, &st.Sockets, &d.left.Sockets, &d.drop.Sockets, func(x *Socket) {
		if !d.open('{', "an object") {
			return
		}
		for first := true; d.next('}', &first); {
			switch string(d.member(socketKeys)) {
			case "name":
				d.text(&x.Name, &d.last.sockName)
			case "proto":
				d.text(&x.Proto, &d.last.proto)
			case "queue":
				d.uint(&x.Queue)
			case "max_queue":
				d.uint(&x.MaxQueue)
			case "shared":
				d.uint(&x.Shared)
			case "can_offload":
				d.uint(&x.CanOffload)
			default:
				d.skip()
			}
		}
	})
}

func (d *decoder) workers(st *Stats) {
	list(d, &st.Workers, &d.left.Workers, &d.drop.Workers, d.worker)
}

func (d *decoder) worker(w *Worker) {
	if !d.open('{', "an object") {
		return
	}
	for first := true; d.next('}', &first); {
		switch string(d.member(workerKeys)) {
		case "id":
			d.uint(&w.ID)
		case "pid":
			d.int(&w.PID)
		case "accepting":
			d.uint(&w.Accepting)
		case "requests":
			d.uint(&w.Requests)
		case "delta_requests":
			d.uint(&w.DeltaRequests)
		case "exceptions":
			d.uint(&w.Exceptions)
		case "harakiri_count":
			d.uint(&w.HarakiriCount)
		case "signals":
			d.uint(&w.Signals)
		case "signal_queue":
			d.uint(&w.SignalQueue)
		case "status":
			d.status(&w.Status)
		case "rss":
			d.uint(&w.RSS)
		case "vsz":
			d.uint(&w.VSZ)
		case "running_time":
			d.uint(&w.RunningTime)
		case "last_spawn":
			d.uint(&w.LastSpawn)
		case "respawn_count":
			d.uint(&w.RespawnCount)
		case "tx":
			d.uint(&w.TX)
		case "avg_rt":
			d.uint(&w.AvgRT)
		case "apps":
			list(d, &w.Apps, &d.left.Apps, &d.drop.Apps, d.app)
		case "cores":
			list(d, &w.Cores, &d.left.Cores, &d.drop.Cores, d.core)
		default:
			d.skip()
		}
	}
}

func (d *decoder) app(a *App) {
	if !d.open('{', "an object") {
		return
	}
	for first := true; d.next('}', &first); {
		switch string(d.member(appKeys)) {
		case "id":
			d.uint(&a.ID)
		case "modifier1":
			d.uint(&a.Modifier1)
		case "mountpoint":
			d.text(&a.Mountpoint, &d.last.mountpoint)
		case "startup_time":
			d.uint(&a.StartupTime)
		case "requests":
			d.uint(&a.Requests)
		case "exceptions":
			d.uint(&a.Exceptions)
		case "chdir":
			d.text(&a.Chdir, &d.last.chdir)
		default:
			d.skip()
		}
	}
}

// core reads a core; its "vars" (the request's headers) and "req_info" are read past, never
// stored.
func (d *decoder) core(c *Core) {
	if !d.open('{', "an object") {
		return
	}
	for first := true; d.next('}', &first); {
		switch string(d.member(coreKeys)) {
		case "id":
			d.uint(&c.ID)
		case "requests":
			d.uint(&c.Requests)
		case "static_requests":
			d.uint(&c.StaticRequests)
		case "routed_requests":
			d.uint(&c.RoutedRequests)
		case "offloaded_requests":
			d.uint(&c.OffloadedRequests)
		case "write_errors":
			d.uint(&c.WriteErrors)
		case "read_errors":
			d.uint(&c.ReadErrors)
		case "in_request":
			d.uint(&c.InRequest)
		default:
			d.skip()
		}
	}
}

func (d *decoder) spoolers(st *Stats) {
	list(d, &st.Spoolers, &d.left.Spoolers, &d.drop.Spoolers, func(x *Spooler) {
		if !d.open('{', "an object") {
			return
		}
		for first := true; d.next('}', &first); {
			switch string(d.member(spoolerKeys)) {
			case "dir":
				d.text(&x.Dir, &d.last.spoolDir)
			case "pid":
				d.int(&x.PID)
			case "tasks":
				d.uint(&x.Tasks)
			case "respawns":
				d.uint(&x.Respawns)
			case "running":
				d.uint(&x.Running)
			default:
				d.skip()
			}
		}
	})
}

func (d *decoder) crons(st *Stats) {
	list(d, &st.Crons, &d.left.Crons, &d.drop.Crons, func(x *Cron) {
		if !d.open('{', "an object") {
			return
		}
		for first := true; d.next('}', &first); {
			switch string(d.member(cronKeys)) {
			case "minute":
				d.int(&x.Minute)
			case "hour":
				d.int(&x.Hour)
			case "day":
				d.int(&x.Day)
			case "month":
				d.int(&x.Month)
			case "week":
				d.int(&x.Week)
			case "command":
				d.text(&x.Command, nil)
			case "unique":
				d.uint(&x.Unique)
			case "legion":
				d.text(&x.Legion, &d.last.legion)
			case "pid":
				d.int(&x.PID)
			case "started_at":
				d.uint(&x.StartedAt)
			default:
				d.skip()
			}
		}
	})
}
