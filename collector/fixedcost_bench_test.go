package collector

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
)

// BenchmarkOwnCollectors gathers each of the exporter's own collectors alone: what they add
// to the fixed cost of a scrape.
func BenchmarkOwnCollectors(b *testing.B) {
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
