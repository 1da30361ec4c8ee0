package uwsgi

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// FuzzDecode feeds arbitrary documents to Decode, seeded with every captured fixture and the
// edge documents. It must never panic; a failure is always a decode error; reading the
// document from a stream one byte at a time gives the same result; where encoding/json can
// tell (no key given twice in one object) both decoders agree on the error or the data; and
// with tiny limits the caps hold.
func FuzzDecode(f *testing.F) {
	files, err := filepath.Glob(filepath.Join(fixtures, "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no fixtures: %v", err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, d := range decodeEdgeDocs {
		f.Add([]byte(d))
	}
	f.Add([]byte(`{"workers":[{"id":0,"status":"sig"},{"id":0,"status":"cheap"}]}`))
	tiny := Limits{Workers: 2, Apps: 2, Cores: 2, Sockets: 1, Caches: 1, Spoolers: 1, Metrics: 1, Locks: 1,
		Daemons: 1, Crons: 1, StringBytes: 4, TotalStringBytes: 40}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkAgainstStdlib(t, b)
		st, err := Decode(b)
		if err != nil {
			if r := fetch.ReasonOf(err); r != fetch.ReasonDecode {
				t.Fatalf("reason %q for %v", r, err)
			}
			return
		}
		for _, w := range st.Workers {
			_ = StatusKind(w.Status)
		}
		_ = st.String()

		small, err := DecodeFrom(bytes.NewReader(b), int64(len(b)), tiny)
		if err != nil {
			t.Fatalf("the document decodes, but not with small limits: %v", err)
		}
		checkTiny(t, small, tiny)
	})
}

// checkTiny fails when st holds more than lim allows.
func checkTiny(t *testing.T, st *Stats, lim Limits) {
	apps, cores, locks := 0, 0, 0
	str := func(s string) {
		if len(s) > lim.StringBytes {
			t.Fatalf("string of %d bytes kept", len(s))
		}
	}
	str(st.Version)
	str(st.CWD)
	for _, w := range st.Workers {
		apps += len(w.Apps)
		cores += len(w.Cores)
		for _, a := range w.Apps {
			str(a.Mountpoint)
			str(a.Chdir)
		}
	}
	for _, l := range st.Locks {
		locks += 1 + len(l)
	}
	for n, m := range st.Metrics {
		str(n)
		str(m.OID)
	}
	if len(st.Workers) > lim.Workers || apps > lim.Apps || cores > lim.Cores || len(st.Sockets) > lim.Sockets ||
		len(st.Caches) > lim.Caches || len(st.Spoolers) > lim.Spoolers || len(st.Metrics) > lim.Metrics ||
		locks > lim.Locks || len(st.Daemons) > lim.Daemons || len(st.Crons) > lim.Crons {
		t.Fatalf("over the limits: %+v", st)
	}
}
