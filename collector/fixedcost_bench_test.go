package collector

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
)

// BenchmarkOwnCollectors gathers each of client_golang's collectors the exporter served its
// own metrics with before SelfMetrics, alone, and "self" writes what replaces all three
// (SelfMetrics, read afresh each time) into a Writer: what they add to the fixed cost of a
// scrape.
func BenchmarkOwnCollectors(b *testing.B) {
	b.Run("self", func(b *testing.B) {
		s := NewSelfMetrics()
		lim := writerLimits{maxSeries: DefaultMaxSeriesPerSource, maxLabel: DefaultMaxLabelValueLength}
		b.ReportAllocs()
		for b.Loop() {
			w := newWriter(time.Time{}, nil, lim, Kind{}, "", noLabels)
			s.write(w, time.Now(), 0)
			w.release()
		}
	})
	for name, c := range map[string]prometheus.Collector{
		"process": collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		"go":      collectors.NewGoCollector(),
		"version": versioncollector.NewCollector("wsgi_exporter"),
	} {
		b.Run(name, func(b *testing.B) {
			reg := prometheus.NewRegistry()
			reg.MustRegister(c)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := reg.Gather(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
