// Package procself reads the exporter process's own figures from /proc and the kernel, as
// typed data, at a small fixed cost per reading: /proc/self/stat and /proc/self/net/netstat
// into buffers the Reader keeps, the open file descriptors by one stat of /proc/self/fd
// (counted with getdents into a kept buffer on kernels before 6.2), the limits by getrlimit,
// and the boot time from /proc/stat once. They are the values client_golang's process
// collector reads (through prometheus/procfs) for the process_* metrics.
package procself
