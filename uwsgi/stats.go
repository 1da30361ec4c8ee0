// Package uwsgi reads the stats server of uWSGI 2.0.x (--stats) over tcp, a unix socket, HTTP
// (--stats-http) or from a saved file, and decodes its JSON document into typed data.
//
// The package knows the protocol only; it never imports the collector.
package uwsgi

import (
	"fmt"
)

// Stats is the document the uWSGI master writes on its stats socket. Every field is optional
// in the JSON: a missing key leaves the zero value (and a nil slice or map). The JSON tags
// document the keys; Decode reads them with its own schema (decode.go), not with the tags.
type Stats struct {
	Version           string             `json:"version"`
	ListenQueue       uint64             `json:"listen_queue"`
	ListenQueueErrors uint64             `json:"listen_queue_errors"`
	SignalQueue       uint64             `json:"signal_queue"`
	Load              uint64             `json:"load"` // requests in progress
	PID               int64              `json:"pid"`
	UID               int64              `json:"uid"`
	GID               int64              `json:"gid"`
	CWD               string             `json:"cwd"`
	Daemons           []Daemon           `json:"daemons"`
	Locks             []map[string]int64 `json:"locks"` // lock name -> pid holding it (0: free)
	Caches            []Cache            `json:"caches"`
	// Metrics is the metrics subsystem (--enable-metrics) by name, without uWSGI's built-in
	// per-worker and per-core metrics (worker.<N>.…), which repeat Workers.
	Metrics  map[string]Metric `json:"metrics"`
	Sockets  []Socket          `json:"sockets"`
	Workers  []Worker          `json:"workers"`
	Spoolers []Spooler         `json:"spoolers"`
	Crons    []Cron            `json:"crons"`

	// Dropped counts what Decode left out to stay within its Limits (nothing, normally).
	Dropped Dropped `json:"-"`
}

// Daemon is an --attach-daemon process. Its command line is decoded but should not be
// exported: it may hold secrets.
type Daemon struct {
	Cmd      string `json:"cmd"`
	PID      int64  `json:"pid"`
	Respawns uint64 `json:"respawns"`
}

// Cache is a uWSGI cache (--cache2).
type Cache struct {
	Name           string `json:"name"`
	Hash           string `json:"hash"`
	HashSize       uint64 `json:"hashsize"`
	KeySize        uint64 `json:"keysize"`
	MaxItems       uint64 `json:"max_items"`
	Blocks         uint64 `json:"blocks"`
	BlockSize      uint64 `json:"blocksize"` // bytes
	Items          uint64 `json:"items"`
	Hits           uint64 `json:"hits"`
	Miss           uint64 `json:"miss"`
	Full           uint64 `json:"full"`             // times an item could not be stored: cache full
	LastModifiedAt uint64 `json:"last_modified_at"` // unix seconds, 0: never
}

// MetricType is the type of a metric of uWSGI's metrics subsystem.
type MetricType int64

// The metric types of uWSGI (core/metrics.c).
const (
	MetricCounter  MetricType = 0
	MetricGauge    MetricType = 1
	MetricAbsolute MetricType = 2 // a value set from outside, graphed like a gauge
	MetricAlias    MetricType = 3 // a second name of another metric
)

// Metric is one entry of the top-level "metrics" object, keyed by the metric's name.
type Metric struct {
	Type  MetricType `json:"type"`
	OID   string     `json:"oid"`
	Value int64      `json:"value"`
}

// Socket is a listening socket of the instance.
type Socket struct {
	Name       string `json:"name"`
	Proto      string `json:"proto"`
	Queue      uint64 `json:"queue"`
	MaxQueue   uint64 `json:"max_queue"`
	Shared     uint64 `json:"shared"`
	CanOffload uint64 `json:"can_offload"`
}

// Worker statuses as uWSGI writes them. A worker handling a signal reports "sig" followed
// by the signal number ("sig1"); see StatusKind.
const (
	StatusIdle  = "idle"
	StatusBusy  = "busy"
	StatusCheap = "cheap"
	StatusPause = "pause"
	StatusSig   = "sig"
)

// Worker is one worker slot. A cheap worker (not running, --cheaper) has id 0 and pid 0.
type Worker struct {
	ID            uint64 `json:"id"`
	PID           int64  `json:"pid"`
	Accepting     uint64 `json:"accepting"`
	Requests      uint64 `json:"requests"`
	DeltaRequests uint64 `json:"delta_requests"`
	Exceptions    uint64 `json:"exceptions"`
	HarakiriCount uint64 `json:"harakiri_count"`
	Signals       uint64 `json:"signals"`
	SignalQueue   uint64 `json:"signal_queue"`
	Status        string `json:"status"`
	RSS           uint64 `json:"rss"`          // bytes; 0 unless --memory-report
	VSZ           uint64 `json:"vsz"`          // bytes; 0 unless --memory-report
	RunningTime   uint64 `json:"running_time"` // microseconds spent serving requests, cumulative
	LastSpawn     uint64 `json:"last_spawn"`   // unix seconds
	RespawnCount  uint64 `json:"respawn_count"`
	TX            uint64 `json:"tx"`     // bytes sent
	AvgRT         uint64 `json:"avg_rt"` // microseconds
	Apps          []App  `json:"apps"`
	// Cores is nil when the instance runs with --stats-no-cores.
	Cores []Core `json:"cores"`
}

// StatusKind maps a worker status to one of the Status constants: "sig1" is StatusSig. An
// unknown status is returned as "".
func StatusKind(status string) string {
	switch status {
	case StatusIdle, StatusBusy, StatusCheap, StatusPause:
		return status
	}
	if len(status) >= 3 && status[:3] == StatusSig {
		for _, c := range status[3:] {
			if c < '0' || c > '9' {
				return ""
			}
		}
		return StatusSig
	}
	return ""
}

// App is an application loaded in a worker.
type App struct {
	ID          uint64 `json:"id"`
	Modifier1   uint64 `json:"modifier1"`
	Mountpoint  string `json:"mountpoint"`
	StartupTime uint64 `json:"startup_time"` // seconds the application took to load
	Requests    uint64 `json:"requests"`
	Exceptions  uint64 `json:"exceptions"`
	Chdir       string `json:"chdir"`
}

// Core is a thread or async core of a worker. The JSON also holds "vars" and "req_info",
// the headers and details of the request in progress: they are deliberately not decoded.
type Core struct {
	ID                uint64 `json:"id"`
	Requests          uint64 `json:"requests"`
	StaticRequests    uint64 `json:"static_requests"`
	RoutedRequests    uint64 `json:"routed_requests"`
	OffloadedRequests uint64 `json:"offloaded_requests"`
	WriteErrors       uint64 `json:"write_errors"`
	ReadErrors        uint64 `json:"read_errors"`
	InRequest         uint64 `json:"in_request"`
}

// Spooler is a --spooler process.
type Spooler struct {
	Dir      string `json:"dir"`
	PID      int64  `json:"pid"`
	Tasks    uint64 `json:"tasks"` // tasks run, cumulative
	Respawns uint64 `json:"respawns"`
	Running  uint64 `json:"running"`
}

// Cron is a --cron task. Its command is decoded but should not be exported.
type Cron struct {
	Minute    int64  `json:"minute"`
	Hour      int64  `json:"hour"`
	Day       int64  `json:"day"`
	Month     int64  `json:"month"`
	Week      int64  `json:"week"`
	Command   string `json:"command"`
	Unique    uint64 `json:"unique"`
	Legion    string `json:"legion"`
	PID       int64  `json:"pid"`
	StartedAt uint64 `json:"started_at"`
}

// String summarises s for messages.
func (s *Stats) String() string {
	return fmt.Sprintf("uWSGI %s pid %d: %d workers", s.Version, s.PID, len(s.Workers))
}
