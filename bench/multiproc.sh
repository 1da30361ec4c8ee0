#!/bin/sh
# Benchmark: Python's MultiProcessCollector + generate_latest against wsgi_exporter's scrape
# (read + merge + text encoding) of the same prometheus_client multiprocess directories of
# 8, 64 and 256 workers x about 2,000 series, written with the real client (Debian's
# /usr/bin/python3 and python3-prometheus-client). Usage: bench/multiproc.sh [workdir]
# Columns: python_s is Python's best of 3 (wall); go_cold_s the first scrape (keys parsed),
# go_warm_s the median and go_best_s the best of 20 later scrapes; ratio = python_s /
# go_warm_s; py_cpu_s / go_cpu_s are CPU seconds per scrape (user + system, all threads),
# less sensitive to other load on the machine; go_anon_MiB is the Go process' peak anonymous
# memory (RssAnon, sampled after each scrape) and go_hwm_MiB its VmHWM, which also counts the
# page-cache pages of the mapped .db files (shared with the writers, not allocated).
# floor_s is the physical floor (bench/multiproc_floor: every file mapped once, each value the
# merge must read touched once per pass, the files shared among GOMAXPROCS goroutines as the
# reader shares them, median of 20 passes) and warm/floor = go_warm_s / floor_s; floor_cpu_s
# its CPU seconds per pass (all threads) and cpu/floor = go_cpu_s / floor_cpu_s.
set -eu
cd "$(dirname "$0")/.."
work=${1:-${TMPDIR:-/tmp}/wsgi-multiproc-bench}
py=/usr/bin/python3
mkdir -p "$work"
go build -o "$work/multiproc_bench" ./bench/multiproc_bench
go build -o "$work/multiproc_floor" ./bench/multiproc_floor
printf '%-8s %-9s %-8s %-9s %-9s %-9s %-9s %-7s %-9s %-8s %-9s %-11s %-10s %-9s %-10s %-11s %s\n' workers entries dir_MiB python_s go_cold_s go_warm_s go_best_s ratio py_cpu_s go_cpu_s cpu_ratio go_anon_MiB go_hwm_MiB floor_s warm/floor floor_cpu_s cpu/floor
for w in 8 64 256; do
	dir="$work/w$w"
	gen=$($py bench/multiproc_gen.py gen --out "$dir" --workers "$w" --series 2000)
	pyt=$($py bench/multiproc_gen.py time --out "$dir" --repeat 3)
	got=$("$work/multiproc_bench" -dir "$dir" -n 20)
	floor=$("$work/multiproc_floor" -dir "$dir" -n 20)
	echo "$gen $pyt $got $floor" | awk -v w="$w" '{
		for (i = 1; i < NF; i += 2) v[$i] = $(i + 1)
		printf "%-8d %-9d %-8.1f %-9.4f %-9.4f %-9.4f %-9.4f %-7.1f %-9.4f %-8.4f %-9.1f %-11.1f %-10.1f %-9.5f %-10.1f %-11.5f %.1f\n", w, v["entries_per_worker"] * w,
			v["dir_bytes"] / 1048576, v["python_seconds"], v["go_first_seconds"], v["go_median_seconds"],
			v["go_best_seconds"], v["python_seconds"] / v["go_median_seconds"], v["python_cpu_seconds"],
			v["go_cpu_seconds"], v["python_cpu_seconds"] / v["go_cpu_seconds"], v["peak_anon_bytes"] / 1048576, v["peak_rss_bytes"] / 1048576,
			v["floor_median_seconds"], v["go_median_seconds"] / v["floor_median_seconds"],
			v["floor_cpu_seconds"], v["go_cpu_seconds"] / v["floor_cpu_seconds"]
	}'
done
