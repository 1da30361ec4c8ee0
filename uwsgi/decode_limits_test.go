package uwsgi

import (
	"bytes"
	"context"
	"io"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// genReader streams prefix, then n units separated by sep, then suffix, making each unit
// when it is read (unit appends the i-th to dst): a document of any size costs the test no
// memory, and reading it allocates nothing.
type genReader struct {
	prefix, sep, suffix string
	n                   int
	unit                func(dst []byte, i int) []byte

	i       int
	pending []byte
	buf     []byte
	started bool
	done    bool
}

func (g *genReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(g.pending) == 0 {
			switch {
			case !g.started:
				g.started = true
				g.pending = append(g.buf[:0], g.prefix...)
			case g.i < g.n:
				g.buf = g.buf[:0]
				if g.i > 0 {
					g.buf = append(g.buf, g.sep...)
				}
				g.buf = g.unit(g.buf, g.i)
				g.pending = g.buf
				g.i++
			case !g.done:
				g.done = true
				g.pending = append(g.buf[:0], g.suffix...)
			default:
				if n == 0 {
					return 0, io.EOF
				}
				return n, nil
			}
			g.buf = g.pending
		}
		c := copy(p[n:], g.pending)
		g.pending = g.pending[c:]
		n += c
	}
	return n, nil
}

// gen returns a genReader with a buffer that is large enough for its units.
func gen(prefix, sep, suffix string, n int, unit func([]byte, int) []byte) *genReader {
	return &genReader{prefix: prefix, sep: sep, suffix: suffix, n: n, unit: unit, buf: make([]byte, 0, 8<<20)}
}

// decodeMeasured decodes r with no size cap (only Limits bound the memory) and returns what it
// allocated.
func decodeMeasured(t *testing.T, r io.Reader, lim Limits) (*Stats, uint64) {
	t.Helper()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	st, err := DecodeFrom(r, 1<<40, lim)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	return st, after.TotalAlloc - before.TotalAlloc
}

// checkBound fails when alloc is over the bound of lim.
func checkBound(t *testing.T, alloc uint64, lim Limits) {
	t.Helper()
	bound := lim.MaxAlloc()
	t.Logf("allocated %d bytes (%.1f MiB); bound %d (%.1f MiB)", alloc, float64(alloc)/(1<<20), bound, float64(bound)/(1<<20))
	if int64(alloc) > bound {
		t.Fatalf("allocated %d bytes, over the bound of %d", alloc, bound)
	}
}

func wantDropped(t *testing.T, st *Stats, want Dropped) {
	t.Helper()
	if st.Dropped != want {
		t.Fatalf("dropped %+v, want %+v", st.Dropped, want)
	}
}

// A flood of workers (each with an app, two cores and request headers) keeps the first 4096;
// the rest are counted, and memory stays within the bound.
func TestDecodeLimitsWorkers(t *testing.T) {
	const n = 100000
	r := gen(`{"version":"2.0.21","workers":[`, ",", "]}", n, func(b []byte, i int) []byte {
		b = append(b, `{"id":`...)
		b = strconv.AppendInt(b, int64(i+1), 10)
		b = append(b, `,"status":"busy","requests":7,"apps":[{"id":0,"mountpoint":"/m`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `","chdir":"/srv"}],"cores":[{"id":0,"in_request":1,"vars":["HTTP_AUTHORIZATION=Bearer s3cr3t","REQUEST_URI=/x"]},{"id":1}]}`...)
		return b
	})
	st, alloc := decodeMeasured(t, r, Limits{})
	wantDropped(t, st, Dropped{Workers: n - 4096})
	if len(st.Workers) != 4096 || st.Workers[4095].ID != 4096 || st.Workers[4095].Apps[0].Mountpoint != "/m4095" ||
		len(st.Workers[4095].Cores) != 2 || st.Workers[0].Status != StatusBusy || st.Workers[0].Apps[0].Chdir != "/srv" {
		t.Fatalf("kept %d workers, last %+v", len(st.Workers), st.Workers[len(st.Workers)-1])
	}
	checkBound(t, alloc, Limits{})
}

// Cores, apps and the other lists: each keeps its cap and counts the rest.
func TestDecodeLimitsLists(t *testing.T) {
	apps300 := strings.TrimSuffix(strings.Repeat(`{"id":1,"mountpoint":"/a"},`, 300), ",") + `]}`
	for _, tc := range []struct {
		name    string
		r       io.Reader
		check   func(*Stats) bool
		dropped Dropped
	}{
		{"cores", gen(`{"workers":[{"id":1,"cores":[`, ",", "]}]}", 200000, func(b []byte, i int) []byte {
			return append(strconv.AppendInt(append(b, `{"id":`...), int64(i), 10), `,"requests":1,"vars":["A=1"]}`...)
		}), func(s *Stats) bool { return len(s.Workers[0].Cores) == 65536 && s.Workers[0].Cores[65535].ID == 65535 }, Dropped{Cores: 200000 - 65536}},
		{"apps", gen(`{"workers":[`, ",", "]}", 100, func(b []byte, i int) []byte {
			return append(append(b, `{"apps":[`...), apps300...)
		}), func(s *Stats) bool {
			return len(s.Workers) == 100 && len(s.Workers[53].Apps) == 300 && len(s.Workers[54].Apps) == 16384-54*300 && len(s.Workers[55].Apps) == 0
		}, Dropped{Apps: 30000 - 16384}},
		{"sockets", gen(`{"sockets":[`, ",", "]}", 5000, func(b []byte, i int) []byte {
			return append(strconv.AppendInt(append(b, `{"name":"s`...), int64(i), 10), `","proto":"uwsgi","queue":1}`...)
		}), func(s *Stats) bool { return len(s.Sockets) == 1024 && s.Sockets[1023].Name == "s1023" }, Dropped{Sockets: 5000 - 1024}},
		{"caches", gen(`{"caches":[`, ",", "]}", 5000, func(b []byte, i int) []byte {
			return append(strconv.AppendInt(append(b, `{"name":"c`...), int64(i), 10), `","hash":"djb33x","hits":1}`...)
		}), func(s *Stats) bool { return len(s.Caches) == 1024 && s.Caches[5].Hits == 1 }, Dropped{Caches: 5000 - 1024}},
		{"spoolers", gen(`{"spoolers":[`, ",", "]}", 5000, func(b []byte, i int) []byte {
			return append(strconv.AppendInt(append(b, `{"dir":"/s`...), int64(i), 10), `","tasks":1}`...)
		}), func(s *Stats) bool { return len(s.Spoolers) == 1024 }, Dropped{Spoolers: 5000 - 1024}},
		{"daemons+crons", gen(`{"daemons":[`, ",", `],"crons":[{"command":"c"},{"command":"c"}]}`, 5000, func(b []byte, i int) []byte {
			return append(b, `{"cmd":"run --password=x","pid":1}`...)
		}), func(s *Stats) bool { return len(s.Daemons) == 1024 && len(s.Crons) == 2 }, Dropped{Daemons: 5000 - 1024}},
		{"locks", gen(`{"locks":[`, ",", "]}", 5000, func(b []byte, i int) []byte {
			return append(strconv.AppendInt(append(b, `{"l`...), int64(i), 10), `":0}`...)
		}), func(s *Stats) bool { return len(s.Locks) == 512 && len(s.Locks[511]) == 1 }, Dropped{Locks: 5000 - 512}}, // an object and its entry cost 2
		{"metrics", gen(`{"metrics":{`, ",", "}}", 150000, func(b []byte, i int) []byte {
			if i%3 == 2 { // uWSGI's built-in worker metrics: neither kept nor counted
				return append(strconv.AppendInt(append(b, `"worker.`...), int64(i), 10), `.requests":{"type":0,"value":1}`...)
			}
			return append(strconv.AppendInt(append(b, `"app.m`...), int64(i), 10), `":{"type":0,"oid":"","value":5}`...)
		}), func(s *Stats) bool { return len(s.Metrics) == 16384 && s.Metrics["app.m0"].Value == 5 }, Dropped{Metrics: 100000 - 16384}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, alloc := decodeMeasured(t, tc.r, Limits{})
			wantDropped(t, st, tc.dropped)
			if !tc.check(st) {
				t.Fatalf("kept the wrong entries")
			}
			checkBound(t, alloc, Limits{})
		})
	}
}

// A long string is cut to 1 KiB at a character boundary; a string of any length that is not
// kept (a request header) costs nothing.
func TestDecodeLimitsStrings(t *testing.T) {
	long := strings.Repeat("é", 3<<20) // 6 MiB
	doc := `{"version":"` + long + `","cwd":"x` + long + `","workers":[{"apps":[{"mountpoint":"/` + long + `"}],` +
		`"cores":[{"vars":["HTTP_COOKIE=` + strings.Repeat("c", 32<<20) + `"]}]}]}`
	st, alloc := decodeMeasured(t, strings.NewReader(doc), Limits{})
	wantDropped(t, st, Dropped{Strings: 3})
	if st.Version != strings.Repeat("é", 512) || st.CWD != "x"+strings.Repeat("é", 511) ||
		st.Workers[0].Apps[0].Mountpoint != "/"+strings.Repeat("é", 511) {
		t.Fatalf("cut wrong: %d %d %d bytes", len(st.Version), len(st.CWD), len(st.Workers[0].Apps[0].Mountpoint))
	}
	checkBound(t, alloc, Limits{})
}

// Once the document's string budget is spent, strings are kept empty and counted; a repeated
// value costs nothing.
func TestDecodeLimitsStringBudget(t *testing.T) {
	mmm := strings.Repeat("m", 1000)
	r := gen(`{"workers":[`, ",", "]}", 2000, func(b []byte, i int) []byte {
		b = append(b, `{"apps":[{"mountpoint":"`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, mmm...)
		return append(b, `","chdir":"/same/for/all"}]}`...)
	})
	st, alloc := decodeMeasured(t, r, Limits{})
	// Each mountpoint costs its length + 16: about 1020 bytes, so 1 MiB pays for 1028 of
	// them (the shared chdir is paid once).
	kept := 0
	for _, w := range st.Workers {
		if w.Apps[0].Mountpoint != "" {
			kept++
		}
		if w.Apps[0].Chdir != "/same/for/all" {
			t.Fatalf("chdir %q", w.Apps[0].Chdir)
		}
	}
	budget := 1<<20 - (len("/same/for/all") + 16)
	want := 0
	for i := 0; i < 2000; i++ {
		cost := len(strconv.Itoa(i)) + 1000 + 16
		if cost > budget {
			break
		}
		budget -= cost
		want++
	}
	if kept != want {
		t.Fatalf("kept %d mountpoints, want %d", kept, want)
	}
	wantDropped(t, st, Dropped{Strings: 2000 - want})
	checkBound(t, alloc, Limits{})
}

// Everything at its cap at once: the case the bound is written for.
func TestDecodeLimitsEverything(t *testing.T) {
	lim := Limits{}.withDefaults()
	var parts []io.Reader
	add := func(s string) { parts = append(parts, strings.NewReader(s)) }
	add(`{"version":"` + strings.Repeat("v", 2000) + `",`)
	// Metrics first, before the string budget is spent.
	parts = append(parts, gen(`"metrics":{`, ",", "},", 20000, func(b []byte, i int) []byte {
		return append(strconv.AppendInt(append(b, `"m`...), int64(i), 10), `":{"type":1,"oid":"o","value":2}`...)
	}))
	// 5000 workers, each with 5 apps of distinct 1000-byte mountpoints and 17 cores: every
	// list and the string budget run out. (The generators allocate nothing while read.)
	mmm, xxx := strings.Repeat("m", 1000), strings.Repeat("x", 100)
	parts = append(parts, gen(`"workers":[`, ",", "],", 5000, func(b []byte, i int) []byte {
		b = strconv.AppendInt(append(b, `{"id":`...), int64(i+1), 10)
		b = append(b, `,"status":"sig`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `","apps":[`...)
		for a := range 5 {
			if a > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(append(b, `{"id":`...), int64(a), 10)
			b = strconv.AppendInt(append(b, `,"mountpoint":"`...), int64(i*5+a), 10)
			b = append(append(b, mmm...), `","chdir":"`...)
			b = strconv.AppendInt(b, int64(i*5+a), 10)
			b = append(b, `"}`...)
		}
		b = append(b, `],"cores":[`...)
		for c := range 17 {
			if c > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(append(b, `{"id":`...), int64(c), 10)
			b = append(b, `,"vars":["HTTP_X=`...)
			b = append(b, xxx...)
			b = append(b, `"]}`...)
		}
		return append(b, `]}`...)
	}))
	list := func(key string, n int, unit string) {
		pieces := strings.Split(unit, "#")
		parts = append(parts, gen(`"`+key+`":[`, ",", "],", n, func(b []byte, i int) []byte {
			for j, p := range pieces {
				if j > 0 {
					b = strconv.AppendInt(b, int64(i), 10)
				}
				b = append(b, p...)
			}
			return b
		}))
	}
	list("sockets", 2000, `{"name":"s#","proto":"p#"}`)
	list("caches", 2000, `{"name":"c#","hash":"h#"}`)
	list("spoolers", 2000, `{"dir":"d#"}`)
	list("daemons", 2000, `{"cmd":"x#"}`)
	list("crons", 2000, `{"command":"x#","legion":"l#"}`)
	parts = append(parts, gen(`"locks":[`, ",", "]}", 2000, func(b []byte, i int) []byte {
		return append(strconv.AppendInt(append(b, `{"l`...), int64(i), 10), `":1}`...)
	}))
	st, alloc := decodeMeasured(t, io.MultiReader(parts...), Limits{})
	if len(st.Workers) != lim.Workers || st.Dropped.Workers != 5000-lim.Workers || st.Dropped.Apps != lim.Workers*5-lim.Apps ||
		st.Dropped.Cores != lim.Workers*17-lim.Cores || st.Dropped.Metrics != 20000-lim.Metrics || st.Dropped.Strings == 0 ||
		st.Dropped.Sockets != 2000-lim.Sockets || st.Dropped.Locks != 2000-lim.Locks/2 || len(st.Metrics) != lim.Metrics {
		t.Fatalf("dropped %+v", st.Dropped)
	}
	checkBound(t, alloc, Limits{})
}

// The bound follows the limits: with small caps a large document costs little.
func TestDecodeLimitsSmallCaps(t *testing.T) {
	lim := Limits{Workers: 10, Apps: 10, Cores: 10, Sockets: 1, Caches: 1, Spoolers: 1, Metrics: 1, Locks: 1,
		Daemons: 1, Crons: 1, StringBytes: 8, TotalStringBytes: 100}
	r := gen(`{"workers":[`, ",", "]}", 1000, func(b []byte, i int) []byte {
		return append(b, `{"status":"a-very-long-status","apps":[{"mountpoint":"/a-long-mountpoint"}],"cores":[{},{}]}`...)
	})
	st, alloc := decodeMeasured(t, r, lim)
	if len(st.Workers) != 10 || st.Workers[0].Status != "a-very-l" || st.Workers[9].Apps[0].Mountpoint != "/a-long-" {
		t.Fatalf("%+v", st.Workers[0])
	}
	wantDropped(t, st, Dropped{Workers: 990, Cores: 10, Strings: 20}) // each status and mountpoint cut
	checkBound(t, alloc, lim)
	if lim.MaxAlloc() > 64<<10 {
		t.Fatalf("bound %d for tiny caps", lim.MaxAlloc())
	}
}

// countingReader cancels ctx after the given number of reads, and counts the reads made.
type countingReader struct {
	r      io.Reader
	reads  int
	cancel func()
	after  int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.reads++
	if c.reads == c.after {
		c.cancel()
	}
	return c.r.Read(p)
}

// A decode whose scrape gave up stops at its next read: a file (which never times out by
// itself) is read through fetch.ContextReader.
func TestDecodeStopsWhenAbandoned(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := &countingReader{r: endlessDoc(), cancel: cancel, after: 3}
	_, err := DecodeFrom(fetch.ContextReader(ctx, src), 1<<40, Limits{})
	if fetch.ReasonOf(err) != fetch.ReasonTimeout {
		t.Fatalf("reason %q (%v), want timeout", fetch.ReasonOf(err), err)
	}
	if src.reads != 3 {
		t.Fatalf("%d reads after the scrape gave up at the 3rd", src.reads)
	}
}

// Decode (whole document in memory) keeps to the same limits.
func TestDecodeBytesLimits(t *testing.T) {
	doc, _ := io.ReadAll(gen(`{"workers":[`, ",", "]}", 5000, func(b []byte, i int) []byte { return append(b, `{}`...) }))
	st, err := Decode(bytes.Clone(doc))
	if err != nil || len(st.Workers) != 4096 || st.Dropped.Workers != 904 {
		t.Fatalf("%v %d %+v", err, len(st.Workers), st.Dropped)
	}
	if st.Dropped.String() != "workers 904" {
		t.Fatalf("%q", st.Dropped.String())
	}
}
