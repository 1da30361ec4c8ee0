#!/bin/sh
# Load test of the gunicorn statsd path: wrk drives Debian's gunicorn (4 sync workers, a
# trivial Flask app) with --statsd-host pointing at wsgi_exporter; at the end the requests
# wrk completed are compared with gunicorn_statsd_requests_total (UDP loss shows as a gap),
# and the cost of one scrape with --gunicorn.pidfile is timed.
# Usage: bench/gunicorn_statsd_load.sh [duration, default 10s] [wrk connections, default 16]
set -eu
DURATION=${1:-10s}
CONNS=${2:-16}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'kill $GPID $XPID 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
free_port() { /usr/bin/python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET, getattr(socket, sys.argv[1])); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' "$1"; }
HTTP=$(free_port SOCK_STREAM); METRICS=$(free_port SOCK_STREAM); UDP=$(free_port SOCK_DGRAM)

(cd "$ROOT" && go build -o "$WORK/wsgi_exporter" ./cmd/wsgi_exporter)
cat > "$WORK/app.py" <<'PY'
from flask import Flask
app = Flask(__name__)
@app.route("/")
def index():
    return "ok"
PY
"$WORK/wsgi_exporter" --web.listen-address=127.0.0.1:$METRICS \
  --gunicorn.statsd-listen-address=127.0.0.1:$UDP --gunicorn.pidfile="$WORK/g.pid" 2>"$WORK/x.log" &
XPID=$!
(cd "$WORK" && exec /usr/bin/gunicorn --pid "$WORK/g.pid" --statsd-host 127.0.0.1:$UDP -w 4 \
  -b 127.0.0.1:$HTTP --log-level warning app:app) 2>"$WORK/g.log" &
GPID=$!
metric() { curl -s "http://127.0.0.1:$METRICS/metrics" | awk -v n="$1" '$1 ~ "^"n"({|$)" {s+=$2} END {printf "%d\n", s}'; }
i=0; until [ "$(metric gunicorn_workers)" = 4 ]; do i=$((i+1)); [ $i -lt 100 ] || { echo "gunicorn did not start"; cat "$WORK/g.log"; exit 1; }; sleep 0.1; done

wrk -t 2 -c "$CONNS" -d "$DURATION" "http://127.0.0.1:$HTTP/" | tee "$WORK/wrk.txt"
SENT=$(awk '/requests in/ {print $1}' "$WORK/wrk.txt")
sleep 1
GOT=$(metric gunicorn_statsd_requests_total)
echo "wrk completed $SENT requests; gunicorn_statsd_requests_total=$GOT; lost=$((SENT-GOT))"
echo "dropped lines: $(metric gunicorn_statsd_lines_dropped_total); kernel socket drops: $(metric gunicorn_statsd_socket_drops_total) datagrams (3 per request)"
echo "scrape time (curl, /proc + statsd): $(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$METRICS/metrics") s"
