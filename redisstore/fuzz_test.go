package redisstore

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fixtureSeeds returns the key names and the hash values of the captured store.
func fixtureSeeds(t testing.TB) (names, values []string) {
	f, err := os.Open(filepath.Join(fixtures, "store.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var d dumped
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			t.Fatal(err)
		}
		names = append(names, d.Key)
		for _, v := range d.Hash {
			values = append(values, v)
		}
	}
	return names, values
}

// FuzzParseName: any name parses without panic; a name that parses is built of its parts
// again, and its metadata name differs only in "meta".
func FuzzParseName(f *testing.F) {
	names, _ := fixtureSeeds(f)
	for _, n := range names[:min(len(names), 200)] {
		f.Add("gunicorn", n)
	}
	f.Add("a:b", "a:b:gauge_livesum:1:metric:x")
	f.Add("", ":counter:1:metric:x")
	f.Fuzz(func(t *testing.T, prefix, name string) {
		n, reason := ParseName(prefix, name)
		if reason != "" {
			return
		}
		tm := n.Type
		if n.Mode != "" {
			tm += "_" + n.Mode
		}
		hash := name[strings.LastIndexByte(name, ':')+1:]
		if got := prefix + ":" + tm + ":" + n.PID + ":metric:" + hash; got != name {
			t.Fatalf("%q parsed as %+v, rebuilt %q", name, n, got)
		}
		if n.Meta != prefix+":"+tm+":"+n.PID+":meta:"+hash {
			t.Fatalf("%q: meta %q", name, n.Meta)
		}
		if !isPID(n.PID) {
			t.Fatalf("%q: pid %q", name, n.PID)
		}
	})
}

// FuzzParseFloat: no panic; plain decimal text reads as Go reads it; hexadecimal never.
func FuzzParseFloat(f *testing.F) {
	_, values := fixtureSeeds(f)
	for _, v := range values[:min(len(values), 300)] {
		if len(v) < 40 {
			f.Add(v)
		}
	}
	for _, s := range []string{"inf", "-inf", "nan", "1e-05", " 3.0\n", "1_000.5", "0x10", "1__0", "_1", "1e400", "-0.0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, ok := ParseFloat(s)
		if strings.ContainsAny(s, "xX") && ok {
			t.Fatalf("%q read as %v", s, v)
		}
		if g, err := strconv.ParseFloat(s, 64); err == nil && !strings.ContainsAny(s, "xX_") {
			if !ok || (g != v && !(math.IsNaN(g) && math.IsNaN(v))) {
				t.Fatalf("%q: %v %v, Go reads %v", s, v, ok, g)
			}
		}
	})
}

func TestParseFloat(t *testing.T) {
	for s, want := range map[string]float64{
		"3.0": 3, "1e-05": 1e-05, "inf": math.Inf(1), "-inf": math.Inf(-1), "Infinity": math.Inf(1),
		" 2.5\n": 2.5, "1_000": 1000, "1e400": math.Inf(1), "-0.0": 0, "7": 7,
	} {
		if v, ok := ParseFloat(s); !ok || v != want {
			t.Errorf("%q: %v %v, want %v", s, v, ok, want)
		}
	}
	if v, ok := ParseFloat("nan"); !ok || !math.IsNaN(v) {
		t.Errorf("nan: %v %v", v, ok)
	}
	for _, s := range []string{"", "four", "0x10", "0x1p-2", "1__0", "_1", "1_", "1.5e", "None"} {
		if v, ok := ParseFloat(s); ok {
			t.Errorf("%q read as %v", s, v)
		}
	}
}

func TestParseName(t *testing.T) {
	for name, want := range map[string]Name{
		"gunicorn:counter:12:metric:ab":           {Type: "counter", PID: "12", Meta: "gunicorn:counter:12:meta:ab"},
		"gunicorn:gauge_livesum:7:metric:ab":      {Type: "gauge", Mode: "livesum", PID: "7", Meta: "gunicorn:gauge_livesum:7:meta:ab"},
		"gunicorn:gauge:7:metric:ab":              {Type: "gauge", PID: "7", Meta: "gunicorn:gauge:7:meta:ab"},
		"gunicorn:histogram:4194304:metric:0f0f0": {Type: "histogram", PID: "4194304", Meta: "gunicorn:histogram:4194304:meta:0f0f0"},
	} {
		n, reason := ParseName("gunicorn", name)
		if reason != "" || n != want {
			t.Errorf("%s: %+v %q", name, n, reason)
		}
	}
	for name, want := range map[string]string{
		"gunicorn:app2:counter:1:metric:ab":  ReasonForeignPrefix,
		"other:counter:1:metric:ab":          ReasonForeignPrefix,
		"gunicorn:counter:01:metric:ab":      ReasonBadName,
		"gunicorn:counter:1:meta:ab":         ReasonBadName,
		"gunicorn:counter:1:metric:":         ReasonBadName,
		"gunicorn:gauge_:1:metric:ab":        ReasonBadName,
		"gunicorn:gauge_live_sum:1:metric:a": ReasonBadName,
		"gunicorn:counter_all:1:metric:ab":   ReasonBadName,
		"counter:1:metric:ab":                ReasonBadName,
	} {
		if _, reason := ParseName("gunicorn", name); reason != want {
			t.Errorf("%s: %q, want %q", name, reason, want)
		}
	}
	if got := ScanPattern(`a*b?[c]\`); got != `a\*b\?\[c\]\\:*:*:metric:*` {
		t.Errorf("ScanPattern = %s", got)
	}
}
