#!/bin/sh
# /probe benchmarks (issue 12), with the built binary and fake uWSGI stats servers serving the
# captured documents of fixtures/uwsgi/:
#
#   bench/probe.sh concurrency [-duration 60s] [-workers 64] [-peer PATH/uwsgi_exporter]
#       64 probes at once over live, dead and hung targets: every answer checked and timed
#   bench/probe.sh fanout [-targets 1000] [-interval 15s] [-duration 120s]
#       1,000 targets on unix sockets, each probed every 15 s: CPU per probe, cores used
#
# Run from the repository root. OURS=path uses that binary instead of building one. Only the
# processes the harness starts are stopped, by pid.
set -eu
MODE=${1:-concurrency}
[ $# -gt 0 ] && shift
DIR=$(mktemp -d /tmp/probe-bench.XXXXXX)
trap 'rm -rf "$DIR"' EXIT INT TERM
if [ -z "${OURS:-}" ]; then
	go build -o "$DIR/wsgi_exporter" ./cmd/wsgi_exporter
	OURS=$DIR/wsgi_exporter
fi
go build -o "$DIR/probe-bench" ./bench/probe
"$DIR/probe-bench" -mode "$MODE" -ours "$OURS" "$@"
