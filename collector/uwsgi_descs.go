package collector

import "github.com/prometheus/client_golang/prometheus"

// UWSGIKind is the uWSGI stats server kind. Its source label is stats_uri, as in
// timonwong/uwsgi_exporter, so that existing dashboards keep their label.
var UWSGIKind = Kind{Name: "uwsgi", SourceLabel: "stats_uri", Title: "uWSGI stats server"}

// uwsgiStatuses are the worker states uWSGI reports (core/master_utils.c), plus "unknown"
// for anything else. "sig" stands for sigN, a worker running the handler of signal N.
var uwsgiStatuses = []string{"idle", "busy", "cheap", "pause", "sig", "unknown"}

func uwsgiDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("uwsgi_"+name, help, append([]string{"stats_uri"}, labels...), nil)
}

var (
	uwsgiWL = []string{"worker_id"} // worker labels after stats_uri

	// Instance.
	uwsgiVersionInfo       = uwsgiDesc("version_info", "uWSGI version of the instance (always 1).", "version")
	uwsgiListenQueue       = uwsgiDesc("listen_queue_length", "Connections waiting in the listen queue of the instance's sockets.")
	uwsgiListenQueueErrors = uwsgiDesc("listen_queue_errors_total", "Times the listen queue overflowed (connections uWSGI saw rejected or dropped).")
	uwsgiSignalQueue       = uwsgiDesc("signal_queue_length", "uWSGI signals waiting in the master's queue.")
	uwsgiLoad              = uwsgiDesc("load", "uWSGI's load: connections waiting in the listen queues, as the master last measured it.")
	uwsgiWorkers           = uwsgiDesc("workers", "Worker slots of the instance, cheap (stopped by the cheaper) workers included.")

	// Sockets.
	uwsgiSocketQueue      = uwsgiDesc("socket_queue_length", "Connections waiting in the socket's listen queue.", "name", "proto")
	uwsgiSocketMaxQueue   = uwsgiDesc("socket_max_queue_length", "Size of the socket's listen queue (--listen).", "name", "proto")
	uwsgiSocketShared     = uwsgiDesc("socket_shared", "Whether the socket is shared (1) or not (0).", "name", "proto")
	uwsgiSocketCanOffload = uwsgiDesc("socket_can_offload", "Whether the socket can offload transfers (1) or not (0).", "name", "proto")

	// Workers.
	uwsgiWorkerAccepting   = uwsgiDesc("worker_accepting", "Whether the worker accepts requests (1) or not (0).", uwsgiWL...)
	uwsgiWorkerDelta       = uwsgiDesc("worker_delta_requests", "Requests the worker served since the master last reset this count.", uwsgiWL...)
	uwsgiWorkerSignalQueue = uwsgiDesc("worker_signal_queue_length", "uWSGI signals waiting in the worker's queue.", uwsgiWL...)
	uwsgiWorkerRSS         = uwsgiDesc("worker_rss_bytes", "Resident memory of the worker. Only with uWSGI's --memory-report: absent otherwise.", uwsgiWL...)
	uwsgiWorkerVSZ         = uwsgiDesc("worker_vsz_bytes", "Virtual memory of the worker. Only with uWSGI's --memory-report: absent otherwise.", uwsgiWL...)
	uwsgiWorkerRunningTime = uwsgiDesc("worker_running_time_seconds_total", "Time the worker spent serving requests, cumulative.", uwsgiWL...)
	uwsgiWorkerLastSpawn   = uwsgiDesc("worker_last_spawn_time_seconds", "When the worker was last spawned, as a Unix time. Absent for a worker never spawned.", uwsgiWL...)
	uwsgiWorkerAvgRT       = uwsgiDesc("worker_average_response_time_seconds", "Moving average of the worker's response time.", uwsgiWL...)
	uwsgiWorkerApps        = uwsgiDesc("worker_apps", "Applications loaded in the worker.", uwsgiWL...)
	uwsgiWorkerCores       = uwsgiDesc("worker_cores", "Cores (threads or async cores) of the worker. Absent with --stats-no-cores.", uwsgiWL...)
	uwsgiWorkerRequests    = uwsgiDesc("worker_requests_total", "Requests served by the worker.", uwsgiWL...)
	uwsgiWorkerExceptions  = uwsgiDesc("worker_exceptions_total", "Exceptions raised in the worker's requests.", uwsgiWL...)
	uwsgiWorkerHarakiri    = uwsgiDesc("worker_harakiri_count_total", "Times the worker was killed by harakiri (request over --harakiri).", uwsgiWL...)
	uwsgiWorkerSignals     = uwsgiDesc("worker_signals_total", "uWSGI signals the worker handled.", uwsgiWL...)
	uwsgiWorkerRespawns    = uwsgiDesc("worker_respawn_count_total", "Times the worker slot was (re)spawned.", uwsgiWL...)
	uwsgiWorkerTX          = uwsgiDesc("worker_transmitted_bytes_total", "Bytes the worker sent in responses.", uwsgiWL...)
	uwsgiWorkerBusy        = uwsgiDesc("worker_busy", "Whether the worker's status is busy (1) or not (0).", uwsgiWL...)
	uwsgiWorkerIdle        = uwsgiDesc("worker_idle", "Whether the worker's status is idle (1) or not (0).", uwsgiWL...)
	uwsgiWorkerCheap       = uwsgiDesc("worker_cheap", "Whether the worker's status is cheap (1) or not (0).", uwsgiWL...)
	uwsgiWorkerStatus      = uwsgiDesc("worker_status", "The worker's status: 1 for the current one of idle, busy, cheap, pause, sig (handling a uWSGI signal), unknown; 0 for the others.", "worker_id", "status")

	// Applications of a worker.
	uwsgiAppLabels           = []string{"worker_id", "app_id", "mountpoint", "chdir"}
	uwsgiWorkerAppStartup    = uwsgiDesc("worker_app_startup_time_seconds", "Time the application took to load.", uwsgiAppLabels...)
	uwsgiWorkerAppRequests   = uwsgiDesc("worker_app_requests_total", "Requests served by the application in the worker.", uwsgiAppLabels...)
	uwsgiWorkerAppExceptions = uwsgiDesc("worker_app_exceptions_total", "Exceptions raised by the application in the worker.", uwsgiAppLabels...)

	// Cores of a worker (--uwsgi.collect-cores).
	uwsgiCoreLabels            = []string{"worker_id", "core_id"}
	uwsgiCoreBusy              = uwsgiDesc("worker_core_busy", "Whether the core is serving a request (1) or not (0).", uwsgiCoreLabels...)
	uwsgiCoreRequests          = uwsgiDesc("worker_core_requests_total", "Requests served by the core.", uwsgiCoreLabels...)
	uwsgiCoreStaticRequests    = uwsgiDesc("worker_core_static_requests_total", "Static files served by the core.", uwsgiCoreLabels...)
	uwsgiCoreRoutedRequests    = uwsgiDesc("worker_core_routed_requests_total", "Requests of the core handled by the internal router.", uwsgiCoreLabels...)
	uwsgiCoreOffloadedRequests = uwsgiDesc("worker_core_offloaded_requests_total", "Requests of the core offloaded to the offload threads.", uwsgiCoreLabels...)
	uwsgiCoreWriteErrors       = uwsgiDesc("worker_core_write_errors_total", "Errors writing responses in the core.", uwsgiCoreLabels...)
	uwsgiCoreReadErrors        = uwsgiDesc("worker_core_read_errors_total", "Errors reading requests in the core.", uwsgiCoreLabels...)

	// Caches.
	uwsgiCacheHits     = uwsgiDesc("cache_hits_total", "Lookups that found their key in the cache.", "name")
	uwsgiCacheMisses   = uwsgiDesc("cache_misses_total", "Lookups that did not find their key in the cache.", "name")
	uwsgiCacheFull     = uwsgiDesc("cache_full_total", "Times an item could not be stored because the cache was full.", "name")
	uwsgiCacheItems    = uwsgiDesc("cache_items", "Items in the cache.", "name")
	uwsgiCacheMaxItems = uwsgiDesc("cache_max_items", "Capacity of the cache in items.", "name")

	// Spoolers.
	uwsgiSpoolerTasks    = uwsgiDesc("spooler_tasks_total", "Tasks the spooler ran.", "dir")
	uwsgiSpoolerRespawns = uwsgiDesc("spooler_respawns_total", "Times the spooler process was respawned.", "dir")
	uwsgiSpoolerRunning  = uwsgiDesc("spooler_running", "Whether the spooler is running a task (1) or not (0).", "dir")

	// uWSGI's metrics subsystem (--enable-metrics), by uWSGI metric name.
	uwsgiMetricCounter = uwsgiDesc("metric_total", "A counter of uWSGI's metrics subsystem (--enable-metrics, --metric), by its uWSGI name.", "name")
	uwsgiMetricGauge   = uwsgiDesc("metric_value", "A gauge or absolute metric of uWSGI's metrics subsystem (--enable-metrics, --metric), by its uWSGI name.", "name")
)
