#!/bin/sh
# gunicorn statsd side by side (docs/benchmarks.md): the same gunicorn line mix (the unprefixed
# lines of fixtures/gunicorn/gunicorn_statsd_lines.txt, replayed in order, one datagram per
# line) sent over loopback UDP at bounded rates, in turns, to prometheus/statsd_exporter (with
# bench/statsd_mapping.yml, which gives wsgi_exporter's series) and to wsgi_exporter; then
# both are scraped and every count checked against what was sent (kernel drops reported), and
# CPU per line and lines/s per core printed with the ratio.
# Builds none of the exporters: give their paths.
#
#   bench/statsd_peers.sh --statsd-exporter PATH --ours PATH \
#       [--rates 20000,50000,100000] [--duration 6s] [--chunk 1s] [--keep]
#
# The paths may also come from STATSD_EXPORTER and OURS.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/peers-harness.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM HUP
go build -C "$ROOT" -o "$TMP/peers" ./bench/peers
"$TMP/peers" statsd --mapping "$ROOT/bench/statsd_mapping.yml" \
	--lines "$ROOT/fixtures/gunicorn/gunicorn_statsd_lines.txt" "$@"
