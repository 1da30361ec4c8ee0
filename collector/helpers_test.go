package collector

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// testWriter is a Writer for one source with the default caps and no deadline.
func testWriter(s Source) *Writer {
	return newWriter(time.Time{}, nil, writerLimits{maxSeries: DefaultMaxSeriesPerSource, maxLabel: DefaultMaxLabelValueLength},
		s.Kind(), s.Config().SourceName(), newSourceLabels(s.Config().Labels))
}

// scrapeFamilies scrapes one source alone (no up, no duration, no exporter metrics) and
// returns its families as an answer holds them.
func scrapeFamilies(t testing.TB, s Source) []*dto.MetricFamily {
	t.Helper()
	w := testWriter(s)
	if err := s.Scrape(context.Background(), w); err != nil {
		t.Fatalf("scrape: %v", err)
	}
	fams := toDTO(assemble(nil, []*sourceOut{{src: s, w: w}}))
	checkFamilies(t, fams)
	return fams
}

// toDTO gives an answer's families as client_model structs.
func toDTO(fams []answerFamily) []*dto.MetricFamily {
	out := make([]*dto.MetricFamily, len(fams))
	for i, f := range fams {
		out[i] = f.dto()
	}
	return out
}

// checkFamilies fails unless client_golang's own gathering (consistency checks, sorting)
// finds nothing to object to and nothing to reorder in fams.
func checkFamilies(t testing.TB, fams []*dto.MetricFamily) {
	t.Helper()
	again, err := prometheus.Gatherers{staticGatherer(fams)}.Gather()
	if err != nil {
		t.Fatalf("client_golang refuses the families: %v", err)
	}
	if len(again) != len(fams) {
		t.Fatalf("client_golang gathers %d families of %d", len(again), len(fams))
	}
	for i := range fams {
		if !proto.Equal(again[i], fams[i]) {
			t.Fatalf("family %d differs once client_golang sorts it:\nours   %v\ntheirs %v", i, fams[i], again[i])
		}
	}
}

// newMP returns a multiprocess directory source.
func newMP(dir string, opts MultiprocOptions) *Multiproc {
	s, err := NewMultiproc(Config{Address: dir}, opts)
	if err != nil {
		panic(err)
	}
	return s.(*Multiproc)
}

// newGP returns a gunicorn /proc source reading through r.
func newGP(pidfile string, r GunicornProcReader) *GunicornProcSource {
	s, err := NewGunicorn(Config{Address: pidfile}, GunicornOptions{Reader: r})
	if err != nil {
		panic(err)
	}
	return s.(*GunicornProcSource)
}
