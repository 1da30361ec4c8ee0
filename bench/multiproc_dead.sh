#!/bin/sh
# Benchmark: a multiprocess directory with dead writers (issue 15). Debian's /usr/bin/python3
# and python3-prometheus-client write the directory of an app with 4 live workers and D dead
# ones, 53 entries and 3 files each (bench/multiproc_gen.py dead: forked workers; the dead ones
# use ids above any pid_max, so they can never be alive; the live ones stay alive, paused,
# until this script kills them by pid). For each D it times, in the same run, Python's
# MultiProcessCollector + generate_latest (best of 3) and wsgi_exporter's scrape of the same
# directory with the liveness check on (--path.procfs=/proc) and the store on, then the same
# with --no-multiproc.store (every file read at every scrape).
# Usage: bench/multiproc_dead.sh [workdir] [dead counts...]
# Columns: python_s: Python's best of 3 (wall); cold_s: the first scrape (lists, reads and folds
# everything), at least 3 s after the directory was written (the steady state: see "When the
# directory is listed again" in docs/multiproc.md); warm_s: median of 40 later scrapes; ratio = python_s / warm_s; cpu_ms: CPU per
# warm scrape (user + system, all threads); rss_MiB / anon_MiB: VmRSS and RssAnon after the
# warm scrapes; relist_ms: median scrape when the directory changed since the last one (a file
# created and removed before each, untimed: the scrape lists the directory again);
# recheck_ms: median scrape that is a recheck (--multiproc.recheck-interval=1ns: list, look up
# every folded pid, stat every folded file); nostore_*: the same without the store.
set -eu
cd "$(dirname "$0")/.."
work=${1:-${TMPDIR:-/tmp}/wsgi-multiproc-dead-bench}
[ $# -gt 0 ] && shift
counts=${*:-0 100 1000 5000}
py=/usr/bin/python3
mkdir -p "$work"
go build -o "$work/multiproc_bench" ./bench/multiproc_bench
printf '%-6s %-6s %-9s %-8s %-9s %-7s %-7s %-8s %-9s %-10s %-11s %-13s %-13s %-16s %s\n' dead files python_s cold_s warm_s ratio cpu_ms rss_MiB anon_MiB relist_ms recheck_ms nostore_cold nostore_warm nostore_rss_MiB nostore_anon_MiB
for d in $counts; do
	dir="$work/d$d"
	gen=$($py bench/multiproc_gen.py dead --out "$dir" --dead "$d" --live 4)
	pids=$(echo "$gen" | sed 's/.*live_pids //')
	pyt=$($py bench/multiproc_gen.py time --out "$dir" --repeat 3)
	sleep 3 # past the 2 s after the directory's last change in which a listing is not trusted
	got=$("$work/multiproc_bench" -dir "$dir" -n 40 -procfs /proc)
	churn=$("$work/multiproc_bench" -dir "$dir" -n 20 -procfs /proc -churn | sed 's/\([a-z_]*\) /churn_\1 /g')
	recheck=$("$work/multiproc_bench" -dir "$dir" -n 20 -procfs /proc -recheck-interval 1ns | sed 's/\([a-z_]*\) /recheck_\1 /g')
	nos=$("$work/multiproc_bench" -dir "$dir" -n 40 -procfs /proc -no-store | sed 's/\([a-z_]*\) /nostore_\1 /g')
	for p in $(echo "$pids" | tr , ' '); do kill "$p"; done
	echo "$gen $pyt $got $churn $recheck $nos" | awk -v d="$d" '{
		for (i = 1; i < NF; i += 2) v[$i] = $(i + 1)
		printf "%-6d %-6d %-9.4f %-8.4f %-9.5f %-7.0f %-7.2f %-8.1f %-9.1f %-10.2f %-11.2f %-13.4f %-13.5f %-16.1f %.1f\n", d, v["files"], v["python_seconds"],
			v["go_first_seconds"], v["go_median_seconds"], v["python_seconds"] / v["go_median_seconds"], v["go_cpu_seconds"] * 1000,
			v["rss_bytes"] / 1048576, v["anon_bytes"] / 1048576, v["churn_go_median_seconds"] * 1000, v["recheck_go_median_seconds"] * 1000,
			v["nostore_go_first_seconds"], v["nostore_go_median_seconds"], v["nostore_rss_bytes"] / 1048576, v["nostore_anon_bytes"] / 1048576
	}'
done
