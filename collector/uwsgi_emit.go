package collector

import (
	"regexp"
	"sort"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsgi-exporter/wsgi_exporter/uwsgi"
)

const uwsgiMicrosPerSecond = 1e6

// uwsgiEmitter builds the metrics of one stats document. It does no I/O.
type uwsgiEmitter struct {
	ch           chan<- prometheus.Metric
	src          string // value of the stats_uri label
	collectCores bool
}

func (e *uwsgiEmitter) send(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
	e.ch <- prometheus.MustNewConstMetric(d, t, v, append([]string{e.src}, labels...)...)
}

func (e *uwsgiEmitter) gauge(d *prometheus.Desc, v float64, labels ...string) {
	e.send(d, prometheus.GaugeValue, v, labels...)
}

func (e *uwsgiEmitter) counter(d *prometheus.Desc, v float64, labels ...string) {
	e.send(d, prometheus.CounterValue, v, labels...)
}

func uwsgiBool(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (e *uwsgiEmitter) emit(s *uwsgi.Stats) {
	if s.Version != "" {
		e.gauge(uwsgiVersionInfo, 1, s.Version)
	}
	e.gauge(uwsgiListenQueue, float64(s.ListenQueue))
	e.counter(uwsgiListenQueueErrors, float64(s.ListenQueueErrors))
	e.gauge(uwsgiSignalQueue, float64(s.SignalQueue))
	e.gauge(uwsgiLoad, float64(s.Load))
	e.gauge(uwsgiWorkers, float64(len(s.Workers)))

	seen := map[string]bool{}
	for _, sk := range s.Sockets {
		key := sk.Name + "\x00" + sk.Proto
		if seen[key] {
			continue // two sockets with one name and protocol cannot be told apart
		}
		seen[key] = true
		e.gauge(uwsgiSocketQueue, float64(sk.Queue), sk.Name, sk.Proto)
		e.gauge(uwsgiSocketMaxQueue, float64(sk.MaxQueue), sk.Name, sk.Proto)
		e.gauge(uwsgiSocketShared, float64(sk.Shared), sk.Name, sk.Proto)
		e.gauge(uwsgiSocketCanOffload, float64(sk.CanOffload), sk.Name, sk.Proto)
	}

	for i, id := range uwsgiWorkerIDs(s.Workers) {
		e.worker(&s.Workers[i], id)
	}

	clear(seen)
	for _, c := range s.Caches {
		if seen[c.Name] {
			continue
		}
		seen[c.Name] = true
		e.counter(uwsgiCacheHits, float64(c.Hits), c.Name)
		e.counter(uwsgiCacheMisses, float64(c.Miss), c.Name)
		e.counter(uwsgiCacheFull, float64(c.Full), c.Name)
		e.gauge(uwsgiCacheItems, float64(c.Items), c.Name)
		e.gauge(uwsgiCacheMaxItems, float64(c.MaxItems), c.Name)
	}

	clear(seen)
	for _, sp := range s.Spoolers {
		if seen[sp.Dir] {
			continue
		}
		seen[sp.Dir] = true
		e.counter(uwsgiSpoolerTasks, float64(sp.Tasks), sp.Dir)
		e.counter(uwsgiSpoolerRespawns, float64(sp.Respawns), sp.Dir)
		e.gauge(uwsgiSpoolerRunning, float64(sp.Running), sp.Dir)
	}

	e.metrics(s.Metrics)
}

// uwsgiWorkerIDs gives every worker a distinct worker_id label: its id when that is set and
// unique; else its slot (position + 1, the id uWSGI gives the slot when it spawns it), as
// for cheap workers that all report id 0; else "slot<position+1>".
func uwsgiWorkerIDs(ws []uwsgi.Worker) []string {
	ids := make([]string, len(ws))
	used := make(map[string]bool, len(ws))
	for i := range ws {
		if ws[i].ID == 0 {
			continue
		}
		id := strconv.FormatUint(ws[i].ID, 10)
		if !used[id] {
			ids[i], used[id] = id, true
		}
	}
	for i := range ws {
		if ids[i] != "" {
			continue
		}
		id := strconv.Itoa(i + 1)
		if used[id] {
			id = "slot" + id
		}
		for used[id] { // only when the document is inconsistent
			id += "_"
		}
		ids[i], used[id] = id, true
	}
	return ids
}

func (e *uwsgiEmitter) worker(w *uwsgi.Worker, id string) {
	e.gauge(uwsgiWorkerAccepting, float64(w.Accepting), id)
	e.gauge(uwsgiWorkerDelta, float64(w.DeltaRequests), id)
	e.gauge(uwsgiWorkerSignalQueue, float64(w.SignalQueue), id)
	// uWSGI reports 0 without --memory-report (and for cheap workers): unknown, not zero.
	if w.RSS > 0 {
		e.gauge(uwsgiWorkerRSS, float64(w.RSS), id)
	}
	if w.VSZ > 0 {
		e.gauge(uwsgiWorkerVSZ, float64(w.VSZ), id)
	}
	e.counter(uwsgiWorkerRunningTime, float64(w.RunningTime)/uwsgiMicrosPerSecond, id)
	if w.LastSpawn > 0 {
		e.gauge(uwsgiWorkerLastSpawn, float64(w.LastSpawn), id)
	}
	e.gauge(uwsgiWorkerAvgRT, float64(w.AvgRT)/uwsgiMicrosPerSecond, id)
	e.gauge(uwsgiWorkerApps, float64(len(w.Apps)), id)
	if w.Cores != nil {
		e.gauge(uwsgiWorkerCores, float64(len(w.Cores)), id)
	}
	e.counter(uwsgiWorkerRequests, float64(w.Requests), id)
	e.counter(uwsgiWorkerExceptions, float64(w.Exceptions), id)
	e.counter(uwsgiWorkerHarakiri, float64(w.HarakiriCount), id)
	e.counter(uwsgiWorkerSignals, float64(w.Signals), id)
	e.counter(uwsgiWorkerRespawns, float64(w.RespawnCount), id)
	e.counter(uwsgiWorkerTX, float64(w.TX), id)

	status := uwsgi.StatusKind(w.Status)
	if status == "" {
		status = "unknown"
	}
	e.gauge(uwsgiWorkerBusy, uwsgiBool(status == uwsgi.StatusBusy), id)
	e.gauge(uwsgiWorkerIdle, uwsgiBool(status == uwsgi.StatusIdle), id)
	e.gauge(uwsgiWorkerCheap, uwsgiBool(status == uwsgi.StatusCheap), id)
	for _, st := range uwsgiStatuses {
		e.gauge(uwsgiWorkerStatus, uwsgiBool(st == status), id, st)
	}

	seen := make(map[uint64]bool, len(w.Apps))
	for _, a := range w.Apps {
		if seen[a.ID] {
			continue
		}
		seen[a.ID] = true
		l := []string{id, strconv.FormatUint(a.ID, 10), a.Mountpoint, a.Chdir}
		e.gauge(uwsgiWorkerAppStartup, float64(a.StartupTime), l...)
		e.counter(uwsgiWorkerAppRequests, float64(a.Requests), l...)
		e.counter(uwsgiWorkerAppExceptions, float64(a.Exceptions), l...)
	}

	if !e.collectCores {
		return
	}
	clear(seen)
	for _, c := range w.Cores {
		if seen[c.ID] {
			continue
		}
		seen[c.ID] = true
		cid := strconv.FormatUint(c.ID, 10)
		e.gauge(uwsgiCoreBusy, uwsgiBool(c.InRequest != 0), id, cid)
		e.counter(uwsgiCoreRequests, float64(c.Requests), id, cid)
		e.counter(uwsgiCoreStaticRequests, float64(c.StaticRequests), id, cid)
		e.counter(uwsgiCoreRoutedRequests, float64(c.RoutedRequests), id, cid)
		e.counter(uwsgiCoreOffloadedRequests, float64(c.OffloadedRequests), id, cid)
		e.counter(uwsgiCoreWriteErrors, float64(c.WriteErrors), id, cid)
		e.counter(uwsgiCoreReadErrors, float64(c.ReadErrors), id, cid)
	}
}

// uwsgiBuiltinWorkerMetric matches uWSGI's own per-worker and per-core metrics
// (worker.1.requests, worker.1.core.0.requests): they repeat the stats' worker fields,
// which are exported in base units as uwsgi_worker_*.
var uwsgiBuiltinWorkerMetric = regexp.MustCompile(`^worker\.[0-9]+\.`)

// metrics exports uWSGI's metrics subsystem: counters as uwsgi_metric_total,
// gauges and absolute metrics as uwsgi_metric_value, each labelled with the uWSGI name.
// Aliases repeat another metric and are left out.
func (e *uwsgiEmitter) metrics(ms map[string]uwsgi.Metric) {
	if len(ms) == 0 {
		return
	}
	names := make([]string, 0, len(ms))
	for n := range ms {
		if !uwsgiBuiltinWorkerMetric.MatchString(n) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		m := ms[n]
		switch m.Type {
		case uwsgi.MetricCounter:
			e.counter(uwsgiMetricCounter, float64(m.Value), n)
		case uwsgi.MetricGauge, uwsgi.MetricAbsolute:
			e.gauge(uwsgiMetricGauge, float64(m.Value), n)
		}
	}
}
