package collector

import (
	"cmp"
	"regexp"
	"slices"
	"strconv"

	"github.com/wsgi-exporter/wsgi_exporter/uwsgi"
)

// The uWSGI stats server's metrics: every family and the translation of a stats document
// (uwsgi.Stats) into them. Every series also carries stats_uri (UWSGIKind's source label).

// uwsgiStatuses are the worker states uWSGI reports (core/master_utils.c), plus "unknown"
// for anything else, in sorted order. "sig" stands for sigN, a worker running the handler of
// signal N.
var uwsgiStatuses = []string{"busy", "cheap", "idle", "pause", "sig", "unknown"}

var (
	// Instance.
	uwsgiVersionInfo       = gauge(UWSGIKind, "uwsgi_version_info", "uWSGI version of the instance (always 1).", "version")
	uwsgiListenQueue       = gauge(UWSGIKind, "uwsgi_listen_queue_length", "Connections waiting in the listen queue of the instance's sockets.")
	uwsgiListenQueueErrors = counter(UWSGIKind, "uwsgi_listen_queue_errors_total", "Times the listen queue overflowed (connections uWSGI saw rejected or dropped).")
	uwsgiSignalQueue       = gauge(UWSGIKind, "uwsgi_signal_queue_length", "uWSGI signals waiting in the master's queue.")
	uwsgiLoad              = gauge(UWSGIKind, "uwsgi_load", "uWSGI's load: connections waiting in the listen queues, as the master last measured it.")
	uwsgiWorkers           = gauge(UWSGIKind, "uwsgi_workers", "Worker slots of the instance, cheap (stopped by the cheaper) workers included.")

	// Sockets.
	uwsgiSocketQueue      = gauge(UWSGIKind, "uwsgi_socket_queue_length", "Connections waiting in the socket's listen queue.", "name", "proto")
	uwsgiSocketMaxQueue   = gauge(UWSGIKind, "uwsgi_socket_max_queue_length", "Size of the socket's listen queue (--listen).", "name", "proto")
	uwsgiSocketShared     = gauge(UWSGIKind, "uwsgi_socket_shared", "Whether the socket is shared (1) or not (0).", "name", "proto")
	uwsgiSocketCanOffload = gauge(UWSGIKind, "uwsgi_socket_can_offload", "Whether the socket can offload transfers (1) or not (0).", "name", "proto")

	// Workers.
	uwsgiWorkerAccepting   = gauge(UWSGIKind, "uwsgi_worker_accepting", "Whether the worker accepts requests (1) or not (0).", "worker_id")
	uwsgiWorkerDelta       = gauge(UWSGIKind, "uwsgi_worker_delta_requests", "Requests the worker served since the master last reset this count.", "worker_id")
	uwsgiWorkerSignalQueue = gauge(UWSGIKind, "uwsgi_worker_signal_queue_length", "uWSGI signals waiting in the worker's queue.", "worker_id")
	uwsgiWorkerRSS         = gauge(UWSGIKind, "uwsgi_worker_rss_bytes", "Resident memory of the worker. Only with uWSGI's --memory-report: absent otherwise.", "worker_id")
	uwsgiWorkerVSZ         = gauge(UWSGIKind, "uwsgi_worker_vsz_bytes", "Virtual memory of the worker. Only with uWSGI's --memory-report: absent otherwise.", "worker_id")
	uwsgiWorkerRunningTime = counter(UWSGIKind, "uwsgi_worker_running_time_seconds_total", "Time the worker spent serving requests, cumulative.", "worker_id")
	uwsgiWorkerLastSpawn   = gauge(UWSGIKind, "uwsgi_worker_last_spawn_time_seconds", "When the worker was last spawned, as a Unix time. Absent for a worker never spawned.", "worker_id")
	uwsgiWorkerAvgRT       = gauge(UWSGIKind, "uwsgi_worker_average_response_time_seconds", "Moving average of the worker's response time.", "worker_id")
	uwsgiWorkerApps        = gauge(UWSGIKind, "uwsgi_worker_apps", "Applications loaded in the worker.", "worker_id")
	uwsgiWorkerCores       = gauge(UWSGIKind, "uwsgi_worker_cores", "Cores (threads or async cores) of the worker. Absent with --stats-no-cores.", "worker_id")
	uwsgiWorkerRequests    = counter(UWSGIKind, "uwsgi_worker_requests_total", "Requests served by the worker.", "worker_id")
	uwsgiWorkerExceptions  = counter(UWSGIKind, "uwsgi_worker_exceptions_total", "Exceptions raised in the worker's requests.", "worker_id")
	uwsgiWorkerHarakiri    = counter(UWSGIKind, "uwsgi_worker_harakiri_count_total", "Times the worker was killed by harakiri (request over --harakiri).", "worker_id")
	uwsgiWorkerSignals     = counter(UWSGIKind, "uwsgi_worker_signals_total", "uWSGI signals the worker handled.", "worker_id")
	uwsgiWorkerRespawns    = counter(UWSGIKind, "uwsgi_worker_respawn_count_total", "Times the worker slot was (re)spawned.", "worker_id")
	uwsgiWorkerTX          = counter(UWSGIKind, "uwsgi_worker_transmitted_bytes_total", "Bytes the worker sent in responses.", "worker_id")
	uwsgiWorkerBusy        = gauge(UWSGIKind, "uwsgi_worker_busy", "Whether the worker's status is busy (1) or not (0).", "worker_id")
	uwsgiWorkerIdle        = gauge(UWSGIKind, "uwsgi_worker_idle", "Whether the worker's status is idle (1) or not (0).", "worker_id")
	uwsgiWorkerCheap       = gauge(UWSGIKind, "uwsgi_worker_cheap", "Whether the worker's status is cheap (1) or not (0).", "worker_id")
	uwsgiWorkerStatus      = gauge(UWSGIKind, "uwsgi_worker_status", "The worker's status: 1 for the current one of idle, busy, cheap, pause, sig (handling a uWSGI signal), unknown; 0 for the others.", "worker_id", "status")

	// Applications of a worker.
	uwsgiWorkerAppStartup    = gauge(UWSGIKind, "uwsgi_worker_app_startup_time_seconds", "Time the application took to load.", "worker_id", "app_id", "mountpoint", "chdir")
	uwsgiWorkerAppRequests   = counter(UWSGIKind, "uwsgi_worker_app_requests_total", "Requests served by the application in the worker.", "worker_id", "app_id", "mountpoint", "chdir")
	uwsgiWorkerAppExceptions = counter(UWSGIKind, "uwsgi_worker_app_exceptions_total", "Exceptions raised by the application in the worker.", "worker_id", "app_id", "mountpoint", "chdir")

	// Cores of a worker (--uwsgi.collect-cores).
	uwsgiCoreBusy              = gauge(UWSGIKind, "uwsgi_worker_core_busy", "Whether the core is serving a request (1) or not (0).", "worker_id", "core_id")
	uwsgiCoreRequests          = counter(UWSGIKind, "uwsgi_worker_core_requests_total", "Requests served by the core.", "worker_id", "core_id")
	uwsgiCoreStaticRequests    = counter(UWSGIKind, "uwsgi_worker_core_static_requests_total", "Static files served by the core.", "worker_id", "core_id")
	uwsgiCoreRoutedRequests    = counter(UWSGIKind, "uwsgi_worker_core_routed_requests_total", "Requests of the core handled by the internal router.", "worker_id", "core_id")
	uwsgiCoreOffloadedRequests = counter(UWSGIKind, "uwsgi_worker_core_offloaded_requests_total", "Requests of the core offloaded to the offload threads.", "worker_id", "core_id")
	uwsgiCoreWriteErrors       = counter(UWSGIKind, "uwsgi_worker_core_write_errors_total", "Errors writing responses in the core.", "worker_id", "core_id")
	uwsgiCoreReadErrors        = counter(UWSGIKind, "uwsgi_worker_core_read_errors_total", "Errors reading requests in the core.", "worker_id", "core_id")

	// Caches.
	uwsgiCacheHits     = counter(UWSGIKind, "uwsgi_cache_hits_total", "Lookups that found their key in the cache.", "name")
	uwsgiCacheMisses   = counter(UWSGIKind, "uwsgi_cache_misses_total", "Lookups that did not find their key in the cache.", "name")
	uwsgiCacheFull     = counter(UWSGIKind, "uwsgi_cache_full_total", "Times an item could not be stored because the cache was full.", "name")
	uwsgiCacheItems    = gauge(UWSGIKind, "uwsgi_cache_items", "Items in the cache.", "name")
	uwsgiCacheMaxItems = gauge(UWSGIKind, "uwsgi_cache_max_items", "Capacity of the cache in items.", "name")

	// Spoolers.
	uwsgiSpoolerTasks    = counter(UWSGIKind, "uwsgi_spooler_tasks_total", "Tasks the spooler ran.", "dir")
	uwsgiSpoolerRespawns = counter(UWSGIKind, "uwsgi_spooler_respawns_total", "Times the spooler process was respawned.", "dir")
	uwsgiSpoolerRunning  = gauge(UWSGIKind, "uwsgi_spooler_running", "Whether the spooler is running a task (1) or not (0).", "dir")

	// uWSGI's metrics subsystem (--enable-metrics), by uWSGI metric name.
	uwsgiMetricCounter = counter(UWSGIKind, "uwsgi_metric_total", "A counter of uWSGI's metrics subsystem (--enable-metrics, --metric), by its uWSGI name.", "name")
	uwsgiMetricGauge   = gauge(UWSGIKind, "uwsgi_metric_value", "A gauge or absolute metric of uWSGI's metrics subsystem (--enable-metrics, --metric), by its uWSGI name.", "name")

	// What the decoder left out of the document to stay within its caps (docs/uwsgi.md).
	uwsgiDroppedEntries = gauge(UWSGIKind, "uwsgi_stats_dropped_entries", "Entries of the last stats document left out to stay within the decoder's caps, by part (strings: strings cut or emptied). Absent when nothing was left out.", "part")
)

const uwsgiMicrosPerSecond = 1e6

func uwsgiBool(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// uwsgiTranslate writes the series of one stats document. Workers are written in the order of
// their worker_id labels, and each family's series in the order of its sorted labels where
// that is cheap, so that the core has nothing to sort.
func uwsgiTranslate(w *Writer, s *uwsgi.Stats, collectCores bool) {
	if s.Version != "" {
		w.Value(uwsgiVersionInfo, 1, s.Version)
	}
	w.Value(uwsgiListenQueue, float64(s.ListenQueue))
	w.Value(uwsgiListenQueueErrors, float64(s.ListenQueueErrors))
	w.Value(uwsgiSignalQueue, float64(s.SignalQueue))
	w.Value(uwsgiLoad, float64(s.Load))
	w.Value(uwsgiWorkers, float64(len(s.Workers)))

	seen := map[string]bool{}
	for _, sk := range s.Sockets {
		key := sk.Name + "\x00" + sk.Proto
		if seen[key] {
			continue // two sockets with one name and protocol cannot be told apart
		}
		seen[key] = true
		w.Value(uwsgiSocketQueue, float64(sk.Queue), sk.Name, sk.Proto)
		w.Value(uwsgiSocketMaxQueue, float64(sk.MaxQueue), sk.Name, sk.Proto)
		w.Value(uwsgiSocketShared, float64(sk.Shared), sk.Name, sk.Proto)
		w.Value(uwsgiSocketCanOffload, float64(sk.CanOffload), sk.Name, sk.Proto)
	}

	ids := uwsgiWorkerIDs(s.Workers)
	order := make([]int, len(ids))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(ids[a], ids[b]) })
	statuses := make([]string, len(s.Workers))
	for _, i := range order {
		statuses[i] = uwsgiWorker(w, &s.Workers[i], ids[i], collectCores)
	}
	for _, st := range uwsgiStatuses {
		for _, i := range order {
			w.Value(uwsgiWorkerStatus, uwsgiBool(st == statuses[i]), ids[i], st)
		}
	}

	clear(seen)
	for _, c := range s.Caches {
		if seen[c.Name] {
			continue
		}
		seen[c.Name] = true
		w.Value(uwsgiCacheHits, float64(c.Hits), c.Name)
		w.Value(uwsgiCacheMisses, float64(c.Miss), c.Name)
		w.Value(uwsgiCacheFull, float64(c.Full), c.Name)
		w.Value(uwsgiCacheItems, float64(c.Items), c.Name)
		w.Value(uwsgiCacheMaxItems, float64(c.MaxItems), c.Name)
	}

	clear(seen)
	for _, sp := range s.Spoolers {
		if seen[sp.Dir] {
			continue
		}
		seen[sp.Dir] = true
		w.Value(uwsgiSpoolerTasks, float64(sp.Tasks), sp.Dir)
		w.Value(uwsgiSpoolerRespawns, float64(sp.Respawns), sp.Dir)
		w.Value(uwsgiSpoolerRunning, float64(sp.Running), sp.Dir)
	}

	uwsgiMetrics(w, s.Metrics)

	s.Dropped.Each(func(part string, n int) { w.Value(uwsgiDroppedEntries, float64(n), part) })
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

// uwsgiWorker writes the series of one worker and returns its status (one of uwsgiStatuses).
func uwsgiWorker(w *Writer, wk *uwsgi.Worker, id string, collectCores bool) string {
	w.Value(uwsgiWorkerAccepting, float64(wk.Accepting), id)
	w.Value(uwsgiWorkerDelta, float64(wk.DeltaRequests), id)
	w.Value(uwsgiWorkerSignalQueue, float64(wk.SignalQueue), id)
	// uWSGI reports 0 without --memory-report (and for cheap workers): unknown, not zero.
	if wk.RSS > 0 {
		w.Value(uwsgiWorkerRSS, float64(wk.RSS), id)
	}
	if wk.VSZ > 0 {
		w.Value(uwsgiWorkerVSZ, float64(wk.VSZ), id)
	}
	w.Value(uwsgiWorkerRunningTime, float64(wk.RunningTime)/uwsgiMicrosPerSecond, id)
	if wk.LastSpawn > 0 {
		w.Value(uwsgiWorkerLastSpawn, float64(wk.LastSpawn), id)
	}
	w.Value(uwsgiWorkerAvgRT, float64(wk.AvgRT)/uwsgiMicrosPerSecond, id)
	w.Value(uwsgiWorkerApps, float64(len(wk.Apps)), id)
	if wk.Cores != nil {
		w.Value(uwsgiWorkerCores, float64(len(wk.Cores)), id)
	}
	w.Value(uwsgiWorkerRequests, float64(wk.Requests), id)
	w.Value(uwsgiWorkerExceptions, float64(wk.Exceptions), id)
	w.Value(uwsgiWorkerHarakiri, float64(wk.HarakiriCount), id)
	w.Value(uwsgiWorkerSignals, float64(wk.Signals), id)
	w.Value(uwsgiWorkerRespawns, float64(wk.RespawnCount), id)
	w.Value(uwsgiWorkerTX, float64(wk.TX), id)

	status := uwsgi.StatusKind(wk.Status)
	if status == "" {
		status = "unknown"
	}
	w.Value(uwsgiWorkerBusy, uwsgiBool(status == uwsgi.StatusBusy), id)
	w.Value(uwsgiWorkerIdle, uwsgiBool(status == uwsgi.StatusIdle), id)
	w.Value(uwsgiWorkerCheap, uwsgiBool(status == uwsgi.StatusCheap), id)

	seen := make(map[uint64]bool, len(wk.Apps))
	for _, a := range wk.Apps {
		if seen[a.ID] {
			continue
		}
		seen[a.ID] = true
		aid := strconv.FormatUint(a.ID, 10)
		w.Value(uwsgiWorkerAppStartup, float64(a.StartupTime), id, aid, a.Mountpoint, a.Chdir)
		w.Value(uwsgiWorkerAppRequests, float64(a.Requests), id, aid, a.Mountpoint, a.Chdir)
		w.Value(uwsgiWorkerAppExceptions, float64(a.Exceptions), id, aid, a.Mountpoint, a.Chdir)
	}

	if !collectCores {
		return status
	}
	clear(seen)
	for _, c := range wk.Cores {
		if seen[c.ID] {
			continue
		}
		seen[c.ID] = true
		cid := strconv.FormatUint(c.ID, 10)
		w.Value(uwsgiCoreBusy, uwsgiBool(c.InRequest != 0), id, cid)
		w.Value(uwsgiCoreRequests, float64(c.Requests), id, cid)
		w.Value(uwsgiCoreStaticRequests, float64(c.StaticRequests), id, cid)
		w.Value(uwsgiCoreRoutedRequests, float64(c.RoutedRequests), id, cid)
		w.Value(uwsgiCoreOffloadedRequests, float64(c.OffloadedRequests), id, cid)
		w.Value(uwsgiCoreWriteErrors, float64(c.WriteErrors), id, cid)
		w.Value(uwsgiCoreReadErrors, float64(c.ReadErrors), id, cid)
	}
	return status
}

// uwsgiBuiltinWorkerMetric matches uWSGI's own per-worker and per-core metrics
// (worker.1.requests, worker.1.core.0.requests): they repeat the stats' worker fields,
// which are exported in base units as uwsgi_worker_*.
var uwsgiBuiltinWorkerMetric = regexp.MustCompile(`^worker\.[0-9]+\.`)

// uwsgiMetrics writes uWSGI's metrics subsystem: counters as uwsgi_metric_total, gauges and
// absolute metrics as uwsgi_metric_value, each labelled with the uWSGI name. Aliases repeat
// another metric and are left out.
func uwsgiMetrics(w *Writer, ms map[string]uwsgi.Metric) {
	if len(ms) == 0 {
		return
	}
	names := make([]string, 0, len(ms))
	for n := range ms {
		if !uwsgiBuiltinWorkerMetric.MatchString(n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		m := ms[n]
		switch m.Type {
		case uwsgi.MetricCounter:
			w.Value(uwsgiMetricCounter, float64(m.Value), n)
		case uwsgi.MetricGauge, uwsgi.MetricAbsolute:
			w.Value(uwsgiMetricGauge, float64(m.Value), n)
		}
	}
}
