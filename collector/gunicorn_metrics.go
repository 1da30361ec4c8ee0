package collector

import (
	"strconv"

	"github.com/wsgi-exporter/wsgi_exporter/gunicorn"
)

// gunicorn's /proc metrics: every family and the translation of a master and its workers
// (gunicorn.Master) into them. Every series also carries pidfile (GunicornKind's source label).
var (
	gpMaster      = gauge(GunicornKind, "gunicorn_master_info", "The gunicorn master process read through the pidfile (1); pid is its process id.", "pid")
	gpMasterStart = gauge(GunicornKind, "gunicorn_master_start_time_seconds", "Start time of the gunicorn master since the unix epoch.")
	gpMasterCPU   = counter(GunicornKind, "gunicorn_master_cpu_seconds_total", "User and system CPU time the gunicorn master used.")
	gpMasterRSS   = gauge(GunicornKind, "gunicorn_master_resident_memory_bytes", "Resident memory of the gunicorn master.")
	gpWorkers     = gauge(GunicornKind, "gunicorn_workers", "Worker processes of the master (its children) at this scrape.")
	gpStarted     = counter(GunicornKind, "gunicorn_workers_started_total",
		"Workers that appeared since the exporter first saw this master, after its initial spawn: replacements after a crash, kill, timeout or max_requests, and workers added by TTIN. A worker born and gone between two scrapes is not seen.")
	gpWorkerInfo  = gauge(GunicornKind, "gunicorn_worker_info", "A worker in a slot (1); pid is its current process id. A new worker takes the lowest free slot.", "slot", "pid")
	gpWorkerRSS   = gauge(GunicornKind, "gunicorn_worker_resident_memory_bytes", "Resident memory of a worker; summed over workers it counts shared pages once per worker.", "slot")
	gpWorkerPSS   = gauge(GunicornKind, "gunicorn_worker_proportional_memory_bytes", "Proportional set size (Pss of /proc/<pid>/smaps_rollup) of a worker: shared pages divided among their sharers, so it sums to the real total.", "slot")
	gpWorkerCPU   = counter(GunicornKind, "gunicorn_worker_cpu_seconds_total", "User and system CPU time of the worker in the slot; resets when a new worker takes the slot.", "slot")
	gpWorkerStart = gauge(GunicornKind, "gunicorn_worker_start_time_seconds", "Start time of the worker in the slot since the unix epoch.", "slot")
	gpWorkerBeat  = gauge(GunicornKind, "gunicorn_worker_heartbeat_age_seconds",
		"Seconds since the worker last touched its heartbeat file, the signal gunicorn's --timeout acts on. An idle sync worker touches it every timeout/2; a worker stuck in a request does not.", "slot")
)

// gunicornWorkerRow is a worker and the slot it holds.
type gunicornWorkerRow struct {
	slot string
	w    gunicorn.Worker
}

// gunicornTranslate writes the series of one master: rows are its workers with their slots,
// started the restart count.
func gunicornTranslate(w *Writer, m *gunicorn.Master, rows []gunicornWorkerRow, started float64) {
	w.Value(gpMaster, 1, strconv.Itoa(m.PID))
	w.Value(gpMasterStart, m.StartTime)
	w.Value(gpMasterCPU, m.CPUSeconds)
	w.Value(gpMasterRSS, m.RSSBytes)
	w.Value(gpWorkers, float64(len(m.Workers)))
	w.Value(gpStarted, started)
	for _, r := range rows {
		w.Value(gpWorkerInfo, 1, r.slot, strconv.Itoa(r.w.PID))
		w.Value(gpWorkerRSS, r.w.RSSBytes, r.slot)
		if r.w.HasPSS {
			w.Value(gpWorkerPSS, r.w.PSSBytes, r.slot)
		}
		w.Value(gpWorkerCPU, r.w.CPUSeconds, r.slot)
		w.Value(gpWorkerStart, r.w.StartTime, r.slot)
		if r.w.HasHeartbeat {
			w.Value(gpWorkerBeat, r.w.HeartbeatAge, r.slot)
		}
	}
}
