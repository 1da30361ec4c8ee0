package collector

import (
	"runtime/metrics"
)

// The exporter process's own families: what client_golang v1.25's process collector, Go
// collector (default options) and version collector ("wsgi_exporter") export, with the same
// names, types, help texts, units and labels (TestSelfMetricsMatchClientGolang gathers both
// and compares them). They are written by SelfMetrics (self.go).

var (
	processCPU       = counter(Kind{}, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.")
	processOpenFDs   = gauge(Kind{}, "process_open_fds", "Number of open file descriptors.")
	processMaxFDs    = gauge(Kind{}, "process_max_fds", "Maximum number of open file descriptors.")
	processVSize     = gauge(Kind{}, "process_virtual_memory_bytes", "Virtual memory size in bytes.")
	processMaxVSize  = gauge(Kind{}, "process_virtual_memory_max_bytes", "Maximum amount of virtual memory available in bytes.")
	processRSS       = gauge(Kind{}, "process_resident_memory_bytes", "Resident memory size in bytes.")
	processStartTime = gauge(Kind{}, "process_start_time_seconds", "Start time of the process since unix epoch in seconds.")
	processNetIn     = counter(Kind{}, "process_network_receive_bytes_total", "Number of bytes received by the process over the network.")
	processNetOut    = counter(Kind{}, "process_network_transmit_bytes_total", "Number of bytes sent by the process over the network.")

	goGoroutines = gauge(Kind{}, "go_goroutines", "Number of goroutines that currently exist.")
	goThreads    = gauge(Kind{}, "go_threads", "Number of OS threads created.")
	goGCDuration = summary(Kind{}, "go_gc_duration_seconds", "A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.")
	goLastGC     = gauge(Kind{}, "go_memstats_last_gc_time_seconds", "Number of seconds since 1970 of last garbage collection.")
	goInfo       = gauge(Kind{}, "go_info", "Information about the Go environment.", "version")

	buildInfo = gauge(Kind{}, "wsgi_exporter_build_info",
		"A metric with a constant '1' value labeled by version, revision, branch, goversion from which wsgi_exporter was built, and the goos and goarch for the build.",
		"branch", "goarch", "goos", "goversion", "revision", "tags", "version")
)

// gcQuantiles are the quantiles of go_gc_duration_seconds: the minimum, quartiles and maximum
// of the recent pauses, as debug.ReadGCStats gives them.
var gcQuantiles = []float64{0, 0.25, 0.5, 0.75, 1}

// rmGauge is one of the runtime/metrics values the Go collector exports by default.
type rmGauge struct {
	name string // the runtime/metrics name
	f    *Family
}

// rmGauges are the Go collector's default runtime/metrics families, named and described as it
// names them: the help is the runtime's description and the metric's name.
var rmGauges = []rmGauge{
	rmFamily("/gc/gogc:percent", "go_gc_gogc_percent", "percent"),
	rmFamily("/gc/gomemlimit:bytes", "go_gc_gomemlimit_bytes", "bytes"),
	rmFamily("/sched/gomaxprocs:threads", "go_sched_gomaxprocs_threads", "threads"),
}

func rmFamily(rm, name, unit string) rmGauge {
	desc := ""
	for _, d := range metrics.All() {
		if d.Name == rm {
			desc = d.Description
		}
	}
	return rmGauge{name: rm, f: gauge(Kind{}, name, desc+" Sourced from "+rm+".").withUnit(unit)}
}

// The runtime/metrics values the go_memstats_* families are made of.
const (
	rmTinyAllocs   = "/gc/heap/tiny/allocs:objects"
	rmAllocs       = "/gc/heap/allocs:objects"
	rmFrees        = "/gc/heap/frees:objects"
	rmAllocBytes   = "/gc/heap/allocs:bytes"
	rmHeapObjects  = "/gc/heap/objects:objects"
	rmHeapGoal     = "/gc/heap/goal:bytes"
	rmTotal        = "/memory/classes/total:bytes"
	rmHeapObjBytes = "/memory/classes/heap/objects:bytes"
	rmHeapUnused   = "/memory/classes/heap/unused:bytes"
	rmHeapReleased = "/memory/classes/heap/released:bytes"
	rmHeapFree     = "/memory/classes/heap/free:bytes"
	rmHeapStacks   = "/memory/classes/heap/stacks:bytes"
	rmOSStacks     = "/memory/classes/os-stacks:bytes"
	rmMSpanInuse   = "/memory/classes/metadata/mspan/inuse:bytes"
	rmMSpanFree    = "/memory/classes/metadata/mspan/free:bytes"
	rmMCacheInuse  = "/memory/classes/metadata/mcache/inuse:bytes"
	rmMCacheFree   = "/memory/classes/metadata/mcache/free:bytes"
	rmBuckets      = "/memory/classes/profiling/buckets:bytes"
	rmMetaOther    = "/memory/classes/metadata/other:bytes"
	rmOther        = "/memory/classes/other:bytes"
)

// memstat is one go_memstats_* family: its value is the sum of some runtime/metrics values,
// as the Go collector derives runtime.MemStats' fields from them.
type memstat struct {
	f   *Family
	sum []string
}

var memstats = []memstat{
	{gauge(Kind{}, "go_memstats_alloc_bytes", "Number of bytes allocated in heap and currently in use. Equals to /memory/classes/heap/objects:bytes."),
		[]string{rmHeapObjBytes}},
	{counter(Kind{}, "go_memstats_alloc_bytes_total", "Total number of bytes allocated in heap until now, even if released already. Equals to /gc/heap/allocs:bytes."),
		[]string{rmAllocBytes}},
	{gauge(Kind{}, "go_memstats_sys_bytes", "Number of bytes obtained from system. Equals to /memory/classes/total:byte."),
		[]string{rmTotal}},
	{counter(Kind{}, "go_memstats_mallocs_total", "Total number of heap objects allocated, both live and gc-ed. Semantically a counter version for go_memstats_heap_objects gauge. Equals to /gc/heap/allocs:objects + /gc/heap/tiny/allocs:objects."),
		[]string{rmAllocs, rmTinyAllocs}},
	{counter(Kind{}, "go_memstats_frees_total", "Total number of heap objects frees. Equals to /gc/heap/frees:objects + /gc/heap/tiny/allocs:objects."),
		[]string{rmFrees, rmTinyAllocs}},
	{gauge(Kind{}, "go_memstats_heap_alloc_bytes", "Number of heap bytes allocated and currently in use, same as go_memstats_alloc_bytes. Equals to /memory/classes/heap/objects:bytes."),
		[]string{rmHeapObjBytes}},
	{gauge(Kind{}, "go_memstats_heap_sys_bytes", "Number of heap bytes obtained from system. Equals to /memory/classes/heap/objects:bytes + /memory/classes/heap/unused:bytes + /memory/classes/heap/released:bytes + /memory/classes/heap/free:bytes."),
		[]string{rmHeapObjBytes, rmHeapUnused, rmHeapReleased, rmHeapFree}},
	{gauge(Kind{}, "go_memstats_heap_idle_bytes", "Number of heap bytes waiting to be used. Equals to /memory/classes/heap/released:bytes + /memory/classes/heap/free:bytes."),
		[]string{rmHeapReleased, rmHeapFree}},
	{gauge(Kind{}, "go_memstats_heap_inuse_bytes", "Number of heap bytes that are in use. Equals to /memory/classes/heap/objects:bytes + /memory/classes/heap/unused:bytes"),
		[]string{rmHeapObjBytes, rmHeapUnused}},
	{gauge(Kind{}, "go_memstats_heap_released_bytes", "Number of heap bytes released to OS. Equals to /memory/classes/heap/released:bytes."),
		[]string{rmHeapReleased}},
	{gauge(Kind{}, "go_memstats_heap_objects", "Number of currently allocated objects. Equals to /gc/heap/objects:objects."),
		[]string{rmHeapObjects}},
	{gauge(Kind{}, "go_memstats_stack_inuse_bytes", "Number of bytes obtained from system for stack allocator in non-CGO environments. Equals to /memory/classes/heap/stacks:bytes."),
		[]string{rmHeapStacks}},
	{gauge(Kind{}, "go_memstats_stack_sys_bytes", "Number of bytes obtained from system for stack allocator. Equals to /memory/classes/heap/stacks:bytes + /memory/classes/os-stacks:bytes."),
		[]string{rmHeapStacks, rmOSStacks}},
	{gauge(Kind{}, "go_memstats_mspan_inuse_bytes", "Number of bytes in use by mspan structures. Equals to /memory/classes/metadata/mspan/inuse:bytes."),
		[]string{rmMSpanInuse}},
	{gauge(Kind{}, "go_memstats_mspan_sys_bytes", "Number of bytes used for mspan structures obtained from system. Equals to /memory/classes/metadata/mspan/inuse:bytes + /memory/classes/metadata/mspan/free:bytes."),
		[]string{rmMSpanInuse, rmMSpanFree}},
	{gauge(Kind{}, "go_memstats_mcache_inuse_bytes", "Number of bytes in use by mcache structures. Equals to /memory/classes/metadata/mcache/inuse:bytes."),
		[]string{rmMCacheInuse}},
	{gauge(Kind{}, "go_memstats_mcache_sys_bytes", "Number of bytes used for mcache structures obtained from system. Equals to /memory/classes/metadata/mcache/inuse:bytes + /memory/classes/metadata/mcache/free:bytes."),
		[]string{rmMCacheInuse, rmMCacheFree}},
	{gauge(Kind{}, "go_memstats_buck_hash_sys_bytes", "Number of bytes used by the profiling bucket hash table. Equals to /memory/classes/profiling/buckets:bytes."),
		[]string{rmBuckets}},
	{gauge(Kind{}, "go_memstats_gc_sys_bytes", "Number of bytes used for garbage collection system metadata. Equals to /memory/classes/metadata/other:bytes."),
		[]string{rmMetaOther}},
	{gauge(Kind{}, "go_memstats_other_sys_bytes", "Number of bytes used for other system allocations. Equals to /memory/classes/other:bytes."),
		[]string{rmOther}},
	{gauge(Kind{}, "go_memstats_next_gc_bytes", "Number of heap bytes when next garbage collection will take place. Equals to /gc/heap/goal:bytes."),
		[]string{rmHeapGoal}},
}
