package multiproc

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

const mpFixtures = "../fixtures/multiproc"

type refEntry struct {
	Key       string   `json:"key"`
	Value     float64  `json:"value"`
	Timestamp *float64 `json:"timestamp"`
}

type refFile struct {
	Format  string     `json:"format"`
	Entries []refEntry `json:"entries"`
}

// TestMultiprocDetect decodes every _detect_* file and compares with the reference decoder.
func TestMultiprocDetect(t *testing.T) {
	total := 0
	for _, set := range []string{"_detect_v1_key3", "_detect_v1_key4", "_detect_v2_key4"} {
		raw, err := os.ReadFile(filepath.Join(mpFixtures, "expected", set+".entries.json"))
		if err != nil {
			t.Fatal(err)
		}
		var want map[string]refFile
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatal(err)
		}
		if len(want) != 19 {
			t.Fatalf("%s: %d reference files, want 19", set, len(want))
		}
		for name, ref := range want {
			data, err := os.ReadFile(filepath.Join(mpFixtures, "dirs", set, name))
			if err != nil {
				t.Fatal(err)
			}
			used, gen, err := ParseFile(data)
			if err != nil {
				t.Fatalf("%s/%s: %v", set, name, err)
			}
			if gen.String() != ref.Format {
				t.Errorf("%s/%s: generation %s, want %s", set, name, gen, ref.Format)
			}
			var got []Entry
			Entries(data, used, gen, func(e Entry) { got = append(got, e) })
			if len(got) != len(ref.Entries) {
				t.Fatalf("%s/%s: %d entries, want %d", set, name, len(got), len(ref.Entries))
			}
			for i, e := range got {
				r := ref.Entries[i]
				if string(e.Key) != r.Key || !sameFloat(e.Value, r.Value) {
					t.Errorf("%s/%s entry %d: %q=%v, want %q=%v", set, name, i, e.Key, e.Value, r.Key, r.Value)
				}
				wantTS := 0.0
				if r.Timestamp != nil {
					wantTS = *r.Timestamp
				}
				if !sameFloat(e.Timestamp, wantTS) {
					t.Errorf("%s/%s entry %d: timestamp %v, want %v", set, name, i, e.Timestamp, wantTS)
				}
				if _, err := ParseKey(e.Key); err != nil {
					t.Errorf("%s/%s entry %d: %v", set, name, i, err)
				}
				total++
			}
		}
	}
	if total == 0 {
		t.Fatal("no entries checked")
	}
}

func sameFloat(a, b float64) bool {
	return a == b || (math.IsNaN(a) && math.IsNaN(b))
}

func TestMultiprocParseFileErrors(t *testing.T) {
	le := func(vs ...uint32) []byte {
		var b []byte
		for _, v := range vs {
			b = append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
		}
		return b
	}
	for _, tc := range []struct {
		name   string
		data   []byte
		reason string
	}{
		{"empty", nil, FileReasonShort},
		{"short", []byte{8, 0, 0}, FileReasonShort},
		{"odd used", le(13, 0, 0, 0), FileReasonCorrupt},
		{"negative used", le(0xfffffff8, 0), FileReasonCorrupt},
		{"used beyond file", le(64, 0), FileReasonTruncated},
		{"sqlite", []byte("SQLite format 3\x00\x10\x00\x01\x01\x00\x40\x20\x20"), FileReasonCorrupt},
		{"key overruns", le(24, 0, 100, 0, 0, 0), FileReasonCorrupt},
		{"negative key length", le(24, 0, 0xffffffff, 0, 0, 0), FileReasonCorrupt},
	} {
		_, _, err := ParseFile(tc.data)
		fe, ok := err.(*FileError)
		if !ok || fe.Reason != tc.reason {
			t.Errorf("%s: error %v, want reason %s", tc.name, err, tc.reason)
		}
	}
	// used 0 (a file being created) and used 8 are empty, not errors.
	for _, d := range [][]byte{le(0, 0), le(8, 0)} {
		if _, _, err := ParseFile(d); err != nil {
			t.Errorf("%x: %v", d, err)
		}
	}
}

func TestMultiprocFileName(t *testing.T) {
	for name, want := range map[string]FileName{
		"counter_1598.db":                   {Type: "counter", ID: "1598"},
		"counter_worker_7.db":               {Type: "counter", ID: "worker_7"},
		"gauge_all_1598.db":                 {Type: "gauge", Mode: "all", ID: "1598", PIDLabel: "1598"},
		"gauge_livesum_uwsgi-3.db":          {Type: "gauge", Mode: "livesum", ID: "uwsgi-3", PIDLabel: "uwsgi-3"},
		"gauge_all_worker_7.db":             {Type: "gauge", Mode: "all", ID: "worker_7", PIDLabel: "wor"},
		"gauge_liveall_ab_x.db":             {Type: "gauge", Mode: "liveall", ID: "ab_x", PIDLabel: ""},
		"gauge_all_ünï_1.db":                {Type: "gauge", Mode: "all", ID: "ünï_1", PIDLabel: ""},
		"histogram_99999999999999999999.db": {Type: "histogram", ID: "99999999999999999999"},
	} {
		got, err := ParseFileName(name)
		if err != nil || got != want {
			t.Errorf("%s: %+v, %v; want %+v", name, got, err, want)
		}
	}
	for name, reason := range map[string]string{
		"README.txt": FileReasonIgnored, ".hidden_1.db": FileReasonIgnored, "counter.db": FileReasonBadName,
		"gauge_all.db": FileReasonBadName, "foo_1.db": FileReasonBadName, "db": FileReasonIgnored,
	} {
		_, err := ParseFileName(name)
		if fe, ok := err.(*FileError); !ok || fe.Reason != reason {
			t.Errorf("%s: %v, want reason %s", name, err, reason)
		}
	}
}

func TestMultiprocParseKey(t *testing.T) {
	k, err := ParseKey([]byte(`["m", "m_total", {"b": "2", "a": "x \"q\" \\ \n 🚀"}, "help"]`))
	if err != nil {
		t.Fatal(err)
	}
	if k.Metric != "m" || k.Sample != "m_total" || k.Help != "help" || len(k.Labels) != 2 ||
		k.Labels[0] != (Label{"a", "x \"q\" \\ \n 🚀"}) || k.Labels[1] != (Label{"b", "2"}) {
		t.Fatalf("%+v", k)
	}
	k, err = ParseKey([]byte(`["m", "m_bucket", {"le": "1e+010"}]`))
	if err != nil || k.Help != DefaultHelp || !k.hasLe || k.le != 1e10 {
		t.Fatalf("%+v %v", k, err)
	}
	for _, bad := range []string{``, `{}`, `["m"]`, `["m","m",{},"h","x"]`, `["m","m",{"a":1},"h"]`,
		`["m","m",[],"h"]`, `[1,"m",{},"h"]`, `["","m",{},"h"]`, "[\"m\xff\",\"m\",{},\"h\"]", `["m","m",null,"h"]`} {
		if _, err := ParseKey([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
