#!/bin/sh
# Side by side with the peers (docs/benchmarks.md): real uWSGI (4, 64, 256 workers) and real
# nginx started on loopback, timonwong/uwsgi_exporter, nginxinc/nginx-prometheus-exporter and
# wsgi_exporter pointed at the same server, interleaved sequential scrapes; prints p50, p99,
# CPU ms per scrape, VmRSS/VmHWM and the ratios, plus the fixed cost of a scrape.
# Builds none of the exporters: give their paths (docs/benchmarks.md says how to build the peers).
#
#   bench/peers.sh --uwsgi-exporter PATH --nginx-exporter PATH --ours PATH \
#       [--workers 4,64,256] [--scrapes 400] [--scrapes-256 200] [--fixed-scrapes 800]
#       [--nginx=false] [--fixed=false] [--prometheus | --accept TYPE --gzip] [--keep]
#
# The paths may also come from UWSGI_EXPORTER, NGINX_EXPORTER and OURS. Needs Debian's uwsgi,
# uwsgi-plugin-python3 and nginx (or nginx-light), and Go to build the harness (bench/peers).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/peers-harness.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM HUP
go build -C "$ROOT" -o "$TMP/peers" ./bench/peers
# The harness stops every process it started, by pid, also on SIGINT/SIGTERM.
"$TMP/peers" scrape "$@"
