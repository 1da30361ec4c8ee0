package collector

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"

	"github.com/wsgi-exporter/wsgi_exporter/multiproc"
)

// dtoAppFamilies is how the exporter built an application's families before appfamily.go
// (client_model structs for every series, sorted with compareMetrics): the reference the
// compact families are checked against.
func dtoAppFamilies(w *Writer, families []multiproc.Family, srcLabel bool, claims *nameClaims) ([]*dto.MetricFamily, map[string]int) {
	type label struct {
		name, value *string
		pair        *dto.LabelPair
	}
	drops := map[string]int{}
	var out []*dto.MetricFamily
	for fi := range families {
		f := &families[fi]
		name := f.Name
		if f.Type == multiproc.TypeCounter {
			name += "_total"
		}
		if !claims.claim(name, f.Type, f.Help, srcLabel) {
			drops[mpReasonNameConflict] += len(f.Series)
			continue
		}
		if !model.UTF8Validation.IsValidMetricName(name) {
			drops[mpReasonInvalid] += len(f.Series)
			continue
		}
		typ := mpDTOType(f.Type)
		if typ < 0 {
			drops[mpReasonInvalid] += len(f.Series)
			continue
		}
		mf := &dto.MetricFamily{Name: proto.String(name), Help: proto.String(f.Help), Type: typ.Enum()}
	series:
		for si := range f.Series {
			s := &f.Series[si]
			var labels []label
			var values []string
			for li := range s.Labels {
				l := &s.Labels[li]
				if (srcLabel && l.Name == *w.srcPair.Name) || slices.Contains(w.consts.names, l.Name) {
					drops[mpReasonLabelConflict]++
					continue series
				}
				if !validLabelName(l.Name) || !utf8.ValidString(l.Value) || (typ == dto.MetricType_SUMMARY && l.Name == model.QuantileLabel) {
					drops[mpReasonInvalid]++
					continue series
				}
				labels = append(labels, label{name: proto.String(l.Name), value: proto.String(l.Value)})
				values = append(values, l.Value)
			}
			if srcLabel {
				labels = append(labels, label{name: w.srcPair.Name, pair: w.srcPair})
			}
			for i, p := range w.constPairs {
				labels = append(labels, label{name: &w.consts.names[i], pair: p})
			}
			slices.SortFunc(labels, func(a, b label) int { return strings.Compare(*a.name, *b.name) })
			for i := 1; i < len(labels); i++ {
				if *labels[i].name == *labels[i-1].name {
					drops[mpReasonInvalid]++
					continue series
				}
			}
			if !w.admitValues(mpSamples(typ, s), values, false) {
				continue
			}
			met := &dto.Metric{}
			for _, l := range labels {
				if l.pair != nil {
					met.Label = append(met.Label, l.pair)
				} else {
					met.Label = append(met.Label, &dto.LabelPair{Name: l.name, Value: l.value})
				}
			}
			switch typ {
			case dto.MetricType_COUNTER:
				met.Counter = &dto.Counter{Value: proto.Float64(s.Value)}
			case dto.MetricType_GAUGE:
				met.Gauge = &dto.Gauge{Value: proto.Float64(s.Value)}
			case dto.MetricType_SUMMARY:
				count := uint64(0)
				if s.Count > 0 && s.Count < math.MaxUint64 {
					count = uint64(s.Count)
				}
				met.Summary = &dto.Summary{SampleCount: proto.Uint64(count), SampleSum: proto.Float64(s.Sum)}
			case dto.MetricType_HISTOGRAM:
				ints := integral(s.Count)
				for _, b := range s.Buckets {
					ints = ints && integral(b.Count)
				}
				h := &dto.Histogram{SampleSum: proto.Float64(s.Sum)}
				if ints {
					h.SampleCount = proto.Uint64(uint64(s.Count))
				} else {
					h.SampleCountFloat = proto.Float64(s.Count)
				}
				for _, b := range s.Buckets {
					db := &dto.Bucket{UpperBound: proto.Float64(b.UpperBound)}
					if ints {
						db.CumulativeCount = proto.Uint64(uint64(b.Count))
					} else {
						db.CumulativeCountFloat = proto.Float64(b.Count)
					}
					h.Bucket = append(h.Bucket, db)
				}
				met.Histogram = h
			}
			mf.Metric = append(mf.Metric, met)
		}
		if len(mf.Metric) > 0 {
			if !slices.IsSortedFunc(mf.Metric, compareMetrics) {
				slices.SortFunc(mf.Metric, compareMetrics)
			}
			out = append(out, mf)
		}
	}
	return out, drops
}

// compareMetrics orders series as client_golang's registry does (the reference's order).
func compareMetrics(a, b *dto.Metric) int {
	if len(a.Label) != len(b.Label) {
		return cmp.Compare(len(a.Label), len(b.Label))
	}
	for i, l := range a.Label {
		if c := strings.Compare(l.GetValue(), b.Label[i].GetValue()); c != 0 {
			return c
		}
	}
	return 0
}

// dtoMergeApps is the reference's merge of families of one name.
func dtoMergeApps(apps []*dto.MetricFamily) []*dto.MetricFamily {
	slices.SortStableFunc(apps, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	out := apps[:0]
	for _, mf := range apps {
		if n := len(out); n > 0 && out[n-1].GetName() == mf.GetName() {
			prev := out[n-1]
			prev.Metric = append(prev.Metric, mf.Metric...)
			slices.SortStableFunc(prev.Metric, compareMetrics)
			continue
		}
		out = append(out, mf)
	}
	return out
}

// appSnap is one application source's merged families for compareAppPaths.
type appSnap struct {
	name     string // the source's name (its source label's value)
	families []multiproc.Family
	srcLabel bool
}

// appLimits are the Writer caps of compareAppPaths; deadline in the past stops the Writer.
type appLimits struct {
	lim      writerLimits
	consts   map[string]string
	deadline time.Time
}

var appFormats = []expfmt.Format{
	expfmt.NewFormat(expfmt.TypeTextPlain),
	expfmt.NewFormat(expfmt.TypeOpenMetrics),
	expfmt.NewFormat(expfmt.TypeProtoDelim),
}

// compareAppPaths builds the sources' application families both ways, merges them, and fails
// unless the compact families' client_model structs equal the reference's, the drops and the
// Writer's counts are the same, and each family in text, OpenMetrics (written directly, or
// left to expfmt where the reference's appendDTO left it too) and protobuf is what expfmt
// writes of the reference. It returns how many families were written directly in OpenMetrics.
func compareAppPaths(t testing.TB, lim appLimits, snaps ...appSnap) int {
	t.Helper()
	consts := newSourceLabels(lim.consts)
	claimsNew, claimsRef := newNameClaims(map[string]bool{}), newNameClaims(map[string]bool{})
	var apps []*appFamily
	var ref []*dto.MetricFamily
	for _, s := range snaps {
		wNew := newWriter(lim.deadline, nil, lim.lim, MultiprocKind, s.name, consts)
		wRef := newWriter(lim.deadline, nil, lim.lim, MultiprocKind, s.name, consts)
		dNew := writeAppFamilies(wNew, s.families, s.srcLabel, claimsNew, func(string) {})
		mfs, dRef := dtoAppFamilies(wRef, s.families, s.srcLabel, claimsRef)
		if fmt.Sprint(dNew) != fmt.Sprint(dRef) || wNew.n != wRef.n || wNew.dropped != wRef.dropped || (wNew.err == nil) != (wRef.err == nil) {
			t.Fatalf("%s: drops %v, %d series, caps %v, err %v; reference %v, %d, %v, %v",
				s.name, dNew, wNew.n, wNew.dropped, wNew.err, dRef, wRef.n, wRef.dropped, wRef.err)
		}
		apps = append(apps, wNew.app...)
		ref = append(ref, mfs...)
	}
	if len(apps) > 1 {
		apps = mergeApps(apps)
	}
	if len(ref) > 1 {
		ref = dtoMergeApps(ref)
	}
	if len(apps) != len(ref) {
		t.Fatalf("%d families, reference %d", len(apps), len(ref))
	}
	direct := 0
	for i, af := range apps {
		want := ref[i]
		got := answerFamily{app: af}.dto()
		if !proto.Equal(got, want) {
			t.Fatalf("%s: client_model structs differ:\n%v\nreference:\n%v", af.name, got, want)
		}
		for _, format := range appFormats {
			text, om := directFormat(format)
			var enc bytes.Buffer
			encErr := expfmt.NewEncoder(&enc, format).Encode(want)
			if !text && !om {
				var mine bytes.Buffer
				if err := expfmt.NewEncoder(&mine, format).Encode(got); fmt.Sprint(err) != fmt.Sprint(encErr) || !bytes.Equal(mine.Bytes(), enc.Bytes()) {
					t.Fatalf("%s in %s: differs from the reference (%v, %v)", af.name, format, err, encErr)
				}
				continue
			}
			b, ok := af.append(nil, om, func(b []byte) []byte { return b })
			if _, refOK := appendDTO(nil, want, om); ok != refOK {
				t.Fatalf("%s in %s: written directly %v, by the reference's path %v", af.name, format, ok, refOK)
			}
			if !ok {
				continue // expfmt encodes got, proto.Equal to want
			}
			if encErr != nil {
				t.Fatalf("%s in %s: expfmt: %v (written directly)", af.name, format, encErr)
			}
			if !bytes.Equal(b, enc.Bytes()) {
				t.Fatalf("%s in %s:\nours:\n%s\nexpfmt:\n%s", af.name, format, b, enc.Bytes())
			}
			if om {
				direct++
			}
		}
	}
	return direct
}

var appDefaultLimits = appLimits{lim: writerLimits{maxSeries: DefaultMaxSeriesPerSource, maxLabel: DefaultMaxLabelValueLength}}

// TestAppFamilyMatchesDTO: the compact application families of every fixture directory (one
// and two directories, with and without their label and constant labels) and of random
// hostile families are what the client_model structs built before were, and are written as
// expfmt writes those.
func TestAppFamilyMatchesDTO(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(mpFixtures, "dirs", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var snaps []appSnap
	for _, d := range dirs {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			continue
		}
		snap, err := multiproc.NewReader(multiproc.Options{}).Read(context.Background(), d)
		if err != nil {
			t.Fatal(err)
		}
		snaps = append(snaps, appSnap{name: d, families: snap.Families})
	}
	n := 0
	for i, s := range snaps {
		n += compareAppPaths(t, appDefaultLimits, s)
		s.srcLabel = true
		n += compareAppPaths(t, appLimits{lim: appDefaultLimits.lim, consts: map[string]string{"env": "p\"r\\o\nd", "zone": "z"}}, s)
		other := snaps[(i+1)%len(snaps)]
		other.srcLabel = true
		n += compareAppPaths(t, appDefaultLimits, s, other) // two directories, families merged
	}
	if n < 200 {
		t.Fatalf("%d families compared in OpenMetrics", n)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		lim := appDefaultLimits
		switch i % 5 {
		case 1:
			lim.lim.maxSeries, lim.lim.maxLabel = 40+rng.IntN(200), 3+rng.IntN(10)
		case 2:
			lim.consts = map[string]string{"b": "const\n", "env": `\"`}
		case 3:
			lim.deadline = time.Unix(1, 0) // long past: the Writer stops at its first look at the clock
		}
		a := appSnap{name: "a", families: randomAppFamilies(rng), srcLabel: i%2 == 0}
		b := appSnap{name: "dir\\b\"", families: randomAppFamilies(rng), srcLabel: i%2 == 0}
		compareAppPaths(t, lim, a, b)
	}
}

// randomAppFamilies makes merged families of every type with hostile names, labels and values.
func randomAppFamilies(rng *rand.Rand) []multiproc.Family {
	pick := func(s ...string) string { return s[rng.IntN(len(s))] }
	vals := []float64{0, 1, -1, 0.5, 2.5, 1e6, 1e21, 1 << 53, 1<<53 + 2, -3, math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 7, 1e-9}
	val := func() float64 { return vals[rng.IntN(len(vals))] }
	var fams []multiproc.Family
	for range 1 + rng.IntN(8) {
		f := multiproc.Family{
			Name: pick("app_x", "app_y", "app_z", "app:colon", "app.dotted", "é_name", "multiproc_up", "bad\xffname", "app_x_bucket"),
			Help: pick("Help.", "back\\slash", "new\nline", `"quoted"`, "", "é"),
			Type: pick(multiproc.TypeCounter, multiproc.TypeGauge, multiproc.TypeHistogram, multiproc.TypeSummary, "weird"),
		}
		if rng.IntN(4) == 0 {
			f.Name = pick("shared_a", "shared_b") // met in both sources
			f.Help = "Shared."
		}
		for range rng.IntN(12) {
			s := multiproc.Series{Value: val(), Sum: val()}
			names := map[string]bool{}
			for range rng.IntN(4) {
				n := pick("a", "b", "c", "pid", "le", "quantile", "multiproc_dir", "env", "__x", "a:b", "é", "9x", "a")
				if names[n] && rng.IntN(3) != 0 {
					continue
				}
				names[n] = true
				s.Labels = append(s.Labels, multiproc.Label{Name: n,
					Value: pick("", "x", "y", `\`, `"`, "\n", "é", "a\\\"b\\n", "bad\xff", "longer-than-some-caps", "x")})
			}
			if rng.IntN(5) != 0 {
				slices.SortFunc(s.Labels, func(a, b multiproc.Label) int { return strings.Compare(a.Name, b.Name) })
			}
			if f.Type == multiproc.TypeSummary {
				s.Count, s.HasCount, s.HasSum = val(), true, true
			}
			if f.Type == multiproc.TypeHistogram {
				acc := 0.0
				bounds := []float64{-1, 0, 0.005, 1, 2.5, 1e21, math.Inf(1)}
				for _, ub := range bounds {
					if rng.IntN(2) == 0 {
						continue
					}
					switch rng.IntN(6) {
					case 0:
						acc += 0.5
					case 1:
						acc = val()
					default:
						acc++
					}
					s.Buckets = append(s.Buckets, multiproc.Bucket{UpperBound: ub, Count: acc})
				}
				if len(s.Buckets) > 0 {
					s.Count, s.HasCount = s.Buckets[len(s.Buckets)-1].Count, true
				}
				s.HasSum = true
			}
			f.Series = append(f.Series, s)
		}
		fams = append(fams, f)
	}
	return fams
}

// fuzzAppFamilies compares the two ways on families of the fuzzer's values and label values
// (FuzzExposition), in one source and in two merged ones.
func fuzzAppFamilies(t *testing.T, v1, v2 float64, l1, l2 string) {
	lab := func(extra ...multiproc.Label) []multiproc.Label {
		ls := append([]multiproc.Label{{Name: "a", Value: l1}, {Name: "b", Value: l2}}, extra...)
		slices.SortFunc(ls, func(a, b multiproc.Label) int { return strings.Compare(a.Name, b.Name) })
		return ls
	}
	fams := func(pid string) []multiproc.Family {
		return []multiproc.Family{
			{Name: "app_g", Help: l1, Type: multiproc.TypeGauge, Series: []multiproc.Series{
				{Labels: lab(multiproc.Label{Name: "pid", Value: pid}), Value: v1}, {Value: v2}, {Labels: lab(), Value: v2}}},
			{Name: "app_c", Help: l2, Type: multiproc.TypeCounter, Series: []multiproc.Series{{Labels: lab(), Value: v1}}},
			{Name: "app_s", Help: l1 + l2, Type: multiproc.TypeSummary, Series: []multiproc.Series{{Labels: lab(), Count: v1, Sum: v2, HasCount: true, HasSum: true}}},
			{Name: "app_h", Type: multiproc.TypeHistogram, Series: []multiproc.Series{
				{Labels: lab(), Sum: v1, Count: v2, Buckets: []multiproc.Bucket{{UpperBound: v1, Count: v1}, {UpperBound: math.Inf(1), Count: v2}}},
				{Sum: v2, Count: math.Abs(v1), Buckets: []multiproc.Bucket{{UpperBound: v2, Count: math.Abs(v1)}}}}},
		}
	}
	compareAppPaths(t, appDefaultLimits, appSnap{name: l1, families: fams("1")})
	compareAppPaths(t, appDefaultLimits, appSnap{name: "one", families: fams("1"), srcLabel: true},
		appSnap{name: l2, families: fams("2"), srcLabel: true})
}

// TestMultiprocConcurrentAnswers: answers are written after the Reader's Read returns, while
// the next scrape's Read (planned: the same merge served again) runs. Nothing an answer reads
// of the snapshot is written by a later Read (-race), and every answer is the same.
func TestMultiprocConcurrentAnswers(t *testing.T) {
	e := newExporter(t, newMP(filepath.Join(mpFixtures, "dirs", "small_new"), MultiprocOptions{DirLabel: true}))
	// answer returns the application families in text, OpenMetrics and protobuf, and the lines
	// of their text.
	answer := func() (string, int) {
		fams, release, err := e.gather(context.Background(), time.Minute)
		defer release()
		if err != nil {
			t.Error(err)
			return "", 0
		}
		var b []byte
		lines := 0
		for _, f := range fams {
			if f.app == nil {
				continue
			}
			for _, om := range []bool{false, true} {
				var ok bool
				at := len(b)
				if b, ok = f.app.append(b, om, func(b []byte) []byte { return b }); !ok {
					t.Errorf("%s not written directly", f.name())
				}
				if !om {
					lines += bytes.Count(b[at:], []byte("\n"))
				}
				runtime.Gosched() // let the other scrapes' reads run meanwhile
			}
			pb, err := proto.Marshal(f.dto())
			if err != nil {
				t.Error(err)
			}
			b = append(b, pb...)
		}
		return string(b), lines
	}
	want, lines := "", 0
	for range 3 { // a full read, then the one that makes the plan, then a planned one
		want, lines = answer()
	}
	// The text has the lines of Python's (the same families and series; the directory label
	// only adds to each line).
	py, err := os.ReadFile(filepath.Join(mpFixtures, "expected", "small_new.sorted.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(py, []byte("\n")); lines != n {
		t.Fatalf("%d lines of text, Python's has %d:\n%s", lines, n, want)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 25 {
				if got, _ := answer(); got != want {
					t.Errorf("answers differ:\n%s\nwant:\n%s", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}
