#!/usr/bin/env bash
# Soak test (`make soak`, minutes; not part of `make test`): the whole stack under steady,
# bounded load with churn, the exporter scraped every second, one line per minute.
#
#   nginx -> uWSGI (4 workers, --max-requests churn, stats socket, multiprocess directory)
#   gunicorn (4 workers, statsd to the exporter, pidfile, multiprocess directory), one worker
#     SIGKILLed by pid every KILL_EVERY seconds (gunicorn replaces it)
#   wrk against nginx and against gunicorn, RATE requests/s each (a Lua delay), in chunks of
#     LOAD seconds per minute; the rest of the minute is quiet so the counts can settle
#   wsgi_exporter reading all of it, scraped every second
#
# Each minute (in the quiet part) it prints the exporter's RSS (in all, anonymous, and
# file-backed: the binary's pages as they get touched) and Go heap in use, goroutines
# (go_goroutines) and open fds (process_open_fds), the multiprocess files (they grow with every
# worker replaced), and the requests sent by wrk next to what each path
# counted: nginx (nginx_http_requests_total less the exporter's own stub_status reads), uWSGI
# (sum of uwsgi_worker_requests_total, kept across --max-requests respawns), the uWSGI app's
# multiprocess counter, gunicorn's statsd (gunicorn_statsd_requests_total) and the gunicorn
# app's multiprocess counter. "sent" counts the requests wrk wrote (a Lua counter) and "done"
# those answered; wrk stops writing 2 s before the end of a chunk so none is in flight then. A
# request in a gunicorn worker killed in flight is sent and never answered (g_sent - g_done);
# g_errs is wrk's socket errors (connect, read, write, timeout).
#
# Usage: bench/soak.sh            (DURATION=10m by default)
#        DURATION=3m RATE=100 KILL_EVERY=15 MAX_REQUESTS=500 bench/soak.sh
# Stops only the processes it started, by pid. Needs uwsgi, uwsgi-plugin-python3, nginx,
# gunicorn, python3-flask, python3-prometheus-client, wrk, curl (scripts/install-test-deps.sh).
set -euo pipefail

DURATION=${DURATION:-10m}
RATE=${RATE:-200}              # requests/s per target
CONNS=${CONNS:-4}              # wrk connections per target
LOAD=${LOAD:-50}               # seconds of load per minute
KILL_EVERY=${KILL_EVERY:-20}   # seconds between two gunicorn worker kills
MAX_REQUESTS=${MAX_REQUESTS:-1000}
PY=/usr/bin/python3

secs() { # 10m, 90s, 1h or a plain number of seconds
  case $1 in
    *h) echo $((${1%h} * 3600)) ;; *m) echo $((${1%m} * 60)) ;; *s) echo "${1%s}" ;; *) echo "$1" ;;
  esac
}
TOTAL=$(secs "$DURATION")
MINUTES=$(((TOTAL + 59) / 60))
for p in uwsgi nginx gunicorn wrk curl; do
  command -v "$p" >/dev/null || { echo "soak: $p is not installed (scripts/install-test-deps.sh)" >&2; exit 1; }
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/wsgi-soak.XXXXXX)
PIDS=() # every process started here, stopped by pid at exit

cleanup() {
  trap - EXIT INT TERM
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then echo "soak: work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { $PY -c 'import socket,sys; s=socket.socket(socket.AF_INET, getattr(socket, sys.argv[1])); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' "$1"; }
NGINX=$(free_port SOCK_STREAM); GUNI=$(free_port SOCK_STREAM); METRICS=$(free_port SOCK_STREAM); UDP=$(free_port SOCK_DGRAM)
mkdir -p "$WORK/mp/uwsgi" "$WORK/mp/gunicorn" "$WORK/nginx/tmp" "$WORK/app"
chmod 755 "$WORK" # nginx's worker (nobody) reaches uWSGI's socket in it

(cd "$ROOT" && go build -o "$WORK/wsgi_exporter" ./cmd/wsgi_exporter)

cat >"$WORK/app/app.py" <<'PY'
from flask import Flask
from prometheus_client import Counter

app = Flask(__name__)
REQUESTS = Counter("soak_requests", "Requests the soak app answered.")

@app.route("/")
def index():
    REQUESTS.inc()
    return "ok\n"
PY

# uWSGI behind nginx: workers recycled every MAX_REQUESTS requests; each worker imports the
# app after the fork (lazy-apps) so that each writes its own multiprocess files.
PROMETHEUS_MULTIPROC_DIR="$WORK/mp/uwsgi" uwsgi --plugin python3 --master --die-on-term \
  --processes 4 --lazy-apps --max-requests "$MAX_REQUESTS" --socket "$WORK/uwsgi.sock" --chmod-socket=666 \
  --stats "$WORK/uwsgi-stats.sock" --chdir "$WORK/app" --module app:app --disable-logging \
  >"$WORK/uwsgi.log" 2>&1 &
PIDS+=($!)

cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
pid nginx.pid;
error_log stderr warn;
daemon off;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path tmp/body; proxy_temp_path tmp/proxy; fastcgi_temp_path tmp/fastcgi;
  uwsgi_temp_path tmp/uwsgi; scgi_temp_path tmp/scgi;
  server {
    listen 127.0.0.1:$NGINX;
    location / { include /etc/nginx/uwsgi_params; uwsgi_pass unix:$WORK/uwsgi.sock; }
    location = /stub_status { stub_status; }
  }
}
EOF
nginx -p "$WORK/nginx/" -c nginx.conf >"$WORK/nginx.log" 2>&1 &
PIDS+=($!)

(cd "$WORK/app" && PROMETHEUS_MULTIPROC_DIR="$WORK/mp/gunicorn" exec gunicorn --pid "$WORK/gunicorn.pid" \
  --statsd-host "127.0.0.1:$UDP" -w 4 -b "127.0.0.1:$GUNI" --log-level warning app:app) >"$WORK/gunicorn.log" 2>&1 &
GPID=$!
PIDS+=($GPID)

"$WORK/wsgi_exporter" --web.listen-address="127.0.0.1:$METRICS" --log.level=warn \
  --uwsgi.stats-uri="unix://$WORK/uwsgi-stats.sock" --nginx.scrape-uri="http://127.0.0.1:$NGINX/stub_status" \
  --multiproc.dir="$WORK/mp/uwsgi" --multiproc.dir="$WORK/mp/gunicorn" \
  --gunicorn.pidfile="$WORK/gunicorn.pid" --gunicorn.statsd-listen-address="127.0.0.1:$UDP" \
  >"$WORK/exporter.log" 2>&1 &
XPID=$!
PIDS+=($XPID)

SCRAPES=0
scrape() { # the exporter's answer, into $WORK/last.prom; counts the scrapes
  curl -sf -o "$WORK/scrape.prom" "http://127.0.0.1:$METRICS/metrics" && SCRAPES=$((SCRAPES + 1)) &&
    mv "$WORK/scrape.prom" "$WORK/last.prom"
}
metric() { # metric NAME [LABEL-SUBSTRING]: the sum of its series in the last scrape
  awk -v n="$1" -v l="${2:-}" '$1 ~ "^"n"({|$)" && index($1, l) {s += $NF} END {printf "%.0f\n", s}' "$WORK/last.prom"
}

for _ in $(seq 100); do
  if scrape && [ "$(metric uwsgi_up)" = 1 ] && [ "$(metric nginx_up)" = 1 ] && [ "$(metric gunicorn_up)" = 1 ] &&
    [ "$(metric gunicorn_workers)" = 4 ]; then break; fi
  sleep 0.2
done
for p in "${PIDS[@]}"; do
  kill -0 "$p" 2>/dev/null || { echo "soak: a process did not start; logs in $WORK" >&2; KEEP=1; exit 1; }
done
[ "$(metric gunicorn_workers)" = 4 ] || { echo "soak: the stack did not come up" >&2; tail -5 "$WORK"/*.log >&2; KEEP=1; exit 1; }
# Before any traffic, nginx has counted only the exporter's stub_status reads: from here on,
# one more per scrape.
NGINX0=$(metric nginx_http_requests_total) SCRAPES0=$SCRAPES
LOG0=$(wc -l <"$WORK/exporter.log") # errors before this are the sources starting

# wrk: a fixed rate per connection (delay), counting the requests it writes. It stops writing
# 2 s before its end (a delay of an hour), so that no request is in flight when it stops:
# every request written is answered (or lost with a killed worker) and counted.
cat >"$WORK/soak.lua" <<EOF
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) sent = 0; stop_at = os.time() + tonumber(args[1]) - 2 end
function delay()
  if os.time() >= stop_at then return 3600000 end
  return $((1000 * CONNS / RATE))
end
function request() sent = sent + 1; return wrk.format() end
function done(summary, latency, requests)
  -- wrk 4 calls request() once on its first thread to check the script before any
  -- connection (script_verify_request): that call wrote nothing.
  local n = -1
  for _, t in ipairs(threads) do n = n + t:get("sent") end
  io.write("sent " .. n .. "\n")
end
EOF

SENT_U=0 SENT_G=0 DONE_G=0 ERR_G=0 KILLS=0
kill_worker() { # SIGKILL one worker of our gunicorn master, found by its parent pid
  local w
  w=$(ps -o pid= --ppid "$GPID" | awk 'NR == 1 {print $1}')
  [ -n "$w" ] && kill -KILL "$w" && KILLS=$((KILLS + 1))
}

printf '%-4s %7s %8s %8s %8s %6s %5s %5s | %9s %9s %9s %9s | %9s %9s %6s %9s %9s %5s\n' min rss_MiB anon_MiB file_MiB heap_MiB gorout fds files \
  u_sent nginx uwsgi mp_uwsgi g_sent g_done g_errs statsd mp_guni kills
for m in $(seq 1 "$MINUTES"); do
  left=$((TOTAL - (m - 1) * 60))
  span=$((left < 60 ? left : 60))
  load=$((span - 10 < LOAD ? span - 10 : LOAD))
  [ "$load" -ge 3 ] || load=3
  wrk -t 1 -c "$CONNS" -d "${load}s" -s "$WORK/soak.lua" "http://127.0.0.1:$NGINX/" -- "$load" >"$WORK/wrk-u.txt" 2>&1 &
  WU=$!
  PIDS+=($WU)
  wrk -t 1 -c "$CONNS" -d "${load}s" -s "$WORK/soak.lua" "http://127.0.0.1:$GUNI/" -- "$load" >"$WORK/wrk-g.txt" 2>&1 &
  WG=$!
  PIDS+=($WG)
  for s in $(seq 1 "$span"); do
    scrape || echo "soak: scrape failed at minute $m second $s" >&2
    if [ "$s" -lt "$load" ] && [ $((((m - 1) * 60 + s) % KILL_EVERY)) = 0 ]; then
      kill_worker || true
    fi
    sleep 1
  done
  wait "$WU" "$WG" || true
  SENT_U=$((SENT_U + $(awk '/^sent / {print $2}' "$WORK/wrk-u.txt")))
  SENT_G=$((SENT_G + $(awk '/^sent / {print $2}' "$WORK/wrk-g.txt")))
  DONE_G=$((DONE_G + $(awk '/requests in/ {print $1}' "$WORK/wrk-g.txt")))
  ERR_G=$((ERR_G + $(awk '/Socket errors/ {gsub(",", ""); for (i = 1; i <= NF; i++) if ($i ~ /^(connect|read|write|timeout)$/) s += $(i + 1)} END {print s + 0}' "$WORK/wrk-g.txt")))
  scrape
  # nginx counts the exporter's stub_status reads too: one per scrape, this one included.
  nginx_app=$(($(metric nginx_http_requests_total) - NGINX0 - (SCRAPES - SCRAPES0)))
  printf '%-4s %7.1f %8.1f %8.1f %8.1f %6s %5s %5s | %9s %9s %9s %9s | %9s %9s %6s %9s %9s %5s\n' "$m" \
    "$(awk '$1 == "process_resident_memory_bytes" {print $2 / 1048576}' "$WORK/last.prom")" \
    "$(awk '$1 == "RssAnon:" {print $2 / 1024}' "/proc/$XPID/status")" "$(awk '$1 == "RssFile:" {print $2 / 1024}' "/proc/$XPID/status")" \
    "$(awk '$1 == "go_memstats_heap_inuse_bytes" {print $2 / 1048576}' "$WORK/last.prom")" \
    "$(metric go_goroutines)" "$(metric process_open_fds)" "$(find "$WORK/mp" -name '*.db' | wc -l)" \
    "$SENT_U" "$nginx_app" "$(metric uwsgi_worker_requests_total)" \
    "$(metric soak_requests_total "mp/uwsgi")" \
    "$SENT_G" "$DONE_G" "$ERR_G" "$(metric gunicorn_statsd_requests_total)" "$(metric soak_requests_total "mp/gunicorn")" "$KILLS"
done
echo "scrapes: $SCRAPES; uWSGI respawns: $(metric uwsgi_worker_respawn_count_total); gunicorn workers started: $(metric gunicorn_workers_started_total);" \
  "statsd lines dropped: $(metric gunicorn_statsd_lines_dropped_total), socket drops: $(metric gunicorn_statsd_socket_drops_total);" \
  "multiprocess files: uwsgi $(find "$WORK/mp/uwsgi" -name '*.db' | wc -l), gunicorn $(find "$WORK/mp/gunicorn" -name '*.db' | wc -l)"
errors=$(tail -n +$((LOG0 + 1)) "$WORK/exporter.log" | grep -c 'level=ERROR' || true)
echo "exporter errors logged during the soak: $errors"
tail -n +$((LOG0 + 1)) "$WORK/exporter.log" | grep 'level=ERROR' | tail -5 || true
