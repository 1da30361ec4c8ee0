#!/usr/bin/env bash
# The whole stack on loopback, for a first look (`make demo`, `make demo-stop`):
#   nginx -> uWSGI (Flask app, 4 lazy-apps workers, stats socket, multiprocess directory)
#   gunicorn (the same app, 4 workers, pidfile, statsd to the exporter, multiprocess directory)
#   wsgi_exporter reading all of them
#   Prometheus (Debian's binary, its own config and data under the state directory) scraping
#   the exporter with rules/*.yml loaded
#   a bounded traffic generator (demo/traffic.py): some 404s, 500s, exceptions, slow requests
#
#   scripts/demo.sh run     start, print the URLs, wait for Ctrl-C, stop  (make demo)
#   scripts/demo.sh start   start in the background and return
#   scripts/demo.sh stop    stop what start/run started                  (make demo-stop)
#   scripts/demo.sh status  list the processes it started
#
# Every process is started in its own session and its pid (with its start time, so that a
# reused pid is never signalled) recorded under $DEMO_STATE_DIR/pids; stop signals exactly those
# process groups, never anything found by name.
#
# Settings (environment): DEMO_STATE_DIR (default .demo in the checkout), the addresses
# DEMO_EXPORTER_LISTEN (127.0.0.1:10133), DEMO_PROMETHEUS_LISTEN (127.0.0.1:19090),
# DEMO_NGINX_LISTEN (127.0.0.1:18080), DEMO_UWSGI_SOCKET (127.0.0.1:18081),
# DEMO_GUNICORN_BIND (127.0.0.1:18000), DEMO_STATSD (127.0.0.1:19125); DEMO_SCRAPE_INTERVAL and
# DEMO_EVAL_INTERVAL (5s); DEMO_RULES_DIR (rules/); DEMO_EXPORTER (a built binary; default: go
# build into the state directory); traffic: DEMO_TRAFFIC_RATE (requests/s, 5; 0: none),
# DEMO_TRAFFIC_REQUESTS (0: no limit), DEMO_TRAFFIC_DURATION (3600 s), DEMO_BURST_EVERY (60 s;
# 0: no bursts); DEMO_SKIP_DEPS=1 skips the package check.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE=${DEMO_STATE_DIR:-$ROOT/.demo}
EXPORTER_LISTEN=${DEMO_EXPORTER_LISTEN:-127.0.0.1:10133}
PROM_LISTEN=${DEMO_PROMETHEUS_LISTEN:-127.0.0.1:19090}
NGINX_LISTEN=${DEMO_NGINX_LISTEN:-127.0.0.1:18080}
UWSGI_SOCKET=${DEMO_UWSGI_SOCKET:-127.0.0.1:18081}
GUNICORN_BIND=${DEMO_GUNICORN_BIND:-127.0.0.1:18000}
STATSD=${DEMO_STATSD:-127.0.0.1:19125}
SCRAPE_INTERVAL=${DEMO_SCRAPE_INTERVAL:-5s}
EVAL_INTERVAL=${DEMO_EVAL_INTERVAL:-5s}
RULES_DIR=${DEMO_RULES_DIR:-$ROOT/rules}
EXPORTER=${DEMO_EXPORTER:-}
TRAFFIC_RATE=${DEMO_TRAFFIC_RATE:-5}
TRAFFIC_REQUESTS=${DEMO_TRAFFIC_REQUESTS:-0}
TRAFFIC_DURATION=${DEMO_TRAFFIC_DURATION:-3600}
BURST_EVERY=${DEMO_BURST_EVERY:-60}
PYTHON=/usr/bin/python3
# Start order; stop goes backwards.
COMPONENTS=(uwsgi nginx gunicorn exporter prometheus traffic)

STARTING=0
say() { printf '%s\n' "$*"; }
# die stops what a failed start had started, then exits.
die() {
  printf 'demo: %s\n' "$*" >&2
  if [ "$STARTING" = 1 ]; then
    STARTING=0
    stop_all
  fi
  exit 1
}

# starttime prints the start time of a process (field 22 of /proc/PID/stat), empty if gone.
starttime() {
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  s=${s##*) }           # the fields after the command name, which may hold spaces
  set -- $s
  printf '%s' "${20}"
}

# start_proc NAME CMD... runs CMD in a new session (its own process group) in the background
# and records its pid and start time.
start_proc() {
  local name=$1
  shift
  setsid "$@" >"$STATE/log/$name.log" 2>&1 </dev/null &
  local pid=$!
  local st
  st=$(starttime "$pid")
  [ -n "$st" ] || die "$name exited at once; see $STATE/log/$name.log"
  printf '%s %s\n' "$pid" "$st" >"$STATE/pids/$name"
  # setsid must not have forked: the recorded pid leads its own process group once setsid has
  # run (a moment after the fork: wait for it).
  local pgid i
  for ((i = 0; i < 200; i++)); do
    pgid=$(ps -o pgid= -p "$pid" | tr -d ' ')
    if [ "$pgid" = "$pid" ] || [ -z "$pgid" ]; then break; fi
    sleep 0.05
  done
  [ -n "$pgid" ] || die "$name exited at once; see $STATE/log/$name.log"
  [ "$pgid" = "$pid" ] || die "$name (pid $pid) is not the leader of its process group ($pgid)"
}

# ours NAME prints the recorded pid when that process (or its process group) is still the one
# this script started.
ours() {
  local f=$STATE/pids/$1 pid st
  [ -f "$f" ] || return 1
  read -r pid st <"$f"
  if [ -d "/proc/$pid" ]; then
    [ "$(starttime "$pid")" = "$st" ] || return 1 # the pid was reused: not ours
    printf '%s' "$pid"
    return 0
  fi
  # The leader is gone; members of its group may remain (a pgid is never reused while the
  # group has members).
  kill -0 -- "-$pid" 2>/dev/null || return 1
  printf '%s' "$pid"
}

stop_proc() {
  local name=$1 pid i
  if pid=$(ours "$name"); then
    kill -TERM -- "-$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
      kill -0 -- "-$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 -- "-$pid" 2>/dev/null; then
      say "demo: $name (process group $pid) still runs after 15 s: SIGKILL"
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    say "stopped $name (pid $pid)"
  fi
  rm -f "$STATE/pids/$name"
}

stop_all() {
  local i
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    stop_proc "${COMPONENTS[i]}"
  done
}

# wait_for WHAT SECONDS CMD... polls CMD until it succeeds.
wait_for() {
  local what=$1 secs=$2 i
  shift 2
  for ((i = 0; i < secs * 10; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  die "timed out after ${secs}s waiting for $what (logs: $STATE/log/)"
}

alive() { ours "$1" >/dev/null || die "$1 exited; see $STATE/log/$1.log"; }

http_ok() { curl -fsS -o /dev/null --max-time 2 "$1"; }

# app_ok waits for the application's answer however slow the first one is: a request given up
# by the client would still be served and counted by the app, uWSGI and nginx, but not by
# gunicorn's statsd, and the demo's counts would disagree by one.
app_ok() { curl -fsS -o /dev/null --max-time 60 "$1"; }

port_free() { ! (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }

render() { # render TEMPLATE OUT KEY=VALUE...
  local in=$1 out=$2 kv
  shift 2
  cp "$in" "$out"
  for kv in "$@"; do
    sed -i "s|@${kv%%=*}@|${kv#*=}|g" "$out"
  done
}

start() {
  for c in "${COMPONENTS[@]}"; do
    if ours "$c" >/dev/null; then die "already running ($c); stop it with: make demo-stop"; fi
  done
  if [ "${DEMO_SKIP_DEPS:-0}" != 1 ]; then "$ROOT/scripts/install-test-deps.sh"; fi
  for a in "$EXPORTER_LISTEN:DEMO_EXPORTER_LISTEN" "$PROM_LISTEN:DEMO_PROMETHEUS_LISTEN" \
    "$NGINX_LISTEN:DEMO_NGINX_LISTEN" "$UWSGI_SOCKET:DEMO_UWSGI_SOCKET" "$GUNICORN_BIND:DEMO_GUNICORN_BIND"; do
    port_free "${a%:*}" || die "${a%:*} is in use: set ${a##*:} to a free address"
  done

  # The state directory is wiped at start: only one this script made (it holds the marker).
  if [ -e "$STATE" ] && [ -n "$(ls -A "$STATE")" ] && [ ! -f "$STATE/.wsgi-exporter-demo" ]; then
    die "$STATE is not empty and was not made by this script: set DEMO_STATE_DIR to another directory"
  fi
  rm -rf "$STATE"
  mkdir -p "$STATE"/{pids,log,run,bin,multiproc,nginx/tmp,prometheus/data}
  : >"$STATE/.wsgi-exporter-demo"
  STARTING=1
  chmod 755 "$STATE" "$STATE/nginx" "$STATE/nginx/tmp" # nginx's workers run as nobody
  if [ -z "$EXPORTER" ]; then
    command -v go >/dev/null || die "Go is needed to build wsgi_exporter (or set DEMO_EXPORTER to a built binary)"
    say "building wsgi_exporter"
    (cd "$ROOT" && go build -o "$STATE/bin/wsgi_exporter" ./cmd/wsgi_exporter)
    EXPORTER=$STATE/bin/wsgi_exporter
  fi

  export DEMO_STATE=$STATE DEMO_UWSGI_SOCKET=$UWSGI_SOCKET DEMO_GUNICORN_BIND=$GUNICORN_BIND DEMO_STATSD=$STATSD

  start_proc uwsgi uwsgi --ini "$ROOT/demo/uwsgi.ini"
  wait_for "uWSGI's stats socket" 30 test -S "$STATE/run/uwsgi-stats.sock"

  render "$ROOT/demo/nginx.conf.in" "$STATE/nginx/nginx.conf" NGINX_LISTEN="$NGINX_LISTEN" UWSGI_SOCKET="$UWSGI_SOCKET"
  start_proc nginx nginx -p "$STATE/nginx/" -c "$STATE/nginx/nginx.conf" -e stderr -g 'daemon off;'
  wait_for "the app through nginx and uWSGI" 30 app_ok "http://$NGINX_LISTEN/"

  # The exporter listens for gunicorn's statsd before gunicorn starts sending.
  start_proc exporter "$EXPORTER" \
    --web.listen-address="$EXPORTER_LISTEN" \
    --uwsgi.stats-uri="unix://$STATE/run/uwsgi-stats.sock" \
    --nginx.scrape-uri="http://$NGINX_LISTEN/stub_status" \
    --multiproc.dir="$STATE/multiproc/uwsgi" \
    --multiproc.dir="$STATE/multiproc/gunicorn" \
    --gunicorn.pidfile="$STATE/run/gunicorn.pid" \
    --gunicorn.statsd-listen-address="$STATSD"
  wait_for "wsgi_exporter" 30 http_ok "http://$EXPORTER_LISTEN/-/healthy"

  start_proc gunicorn gunicorn -c "$ROOT/demo/gunicorn.conf.py" --chdir "$ROOT/demo" app:app
  wait_for "gunicorn" 30 app_ok "http://$GUNICORN_BIND/"

  local timeout=$SCRAPE_INTERVAL
  render "$ROOT/demo/prometheus.yml.in" "$STATE/prometheus/prometheus.yml" SCRAPE_INTERVAL="$SCRAPE_INTERVAL" \
    SCRAPE_TIMEOUT="$timeout" EVAL_INTERVAL="$EVAL_INTERVAL" RULES_DIR="$RULES_DIR" EXPORTER_LISTEN="$EXPORTER_LISTEN"
  start_proc prometheus prometheus --config.file="$STATE/prometheus/prometheus.yml" \
    --storage.tsdb.path="$STATE/prometheus/data" --web.listen-address="$PROM_LISTEN"
  wait_for "Prometheus" 60 http_ok "http://$PROM_LISTEN/-/ready"

  if [ "$TRAFFIC_RATE" != 0 ]; then
    start_proc traffic "$PYTHON" "$ROOT/demo/traffic.py" \
      --target "uwsgi=http://$NGINX_LISTEN" --target "gunicorn=http://$GUNICORN_BIND" \
      --rate "$TRAFFIC_RATE" --requests "$TRAFFIC_REQUESTS" --duration "$TRAFFIC_DURATION" \
      --burst-every "$BURST_EVERY" --summary "$STATE/traffic.json"
  fi
  for c in uwsgi nginx exporter gunicorn prometheus; do alive "$c"; done
  : >"$STATE/ready"
  STARTING=0
  info
}

info() {
  local q
  q() { printf 'http://%s/graph?g0.tab=0&g0.expr=%s' "$PROM_LISTEN" "$("$PYTHON" -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1")"; }
  cat <<EOF

wsgi_exporter demo is running (state, logs and pids in $STATE)

  exporter landing page     http://$EXPORTER_LISTEN/
  exporter metrics          http://$EXPORTER_LISTEN/metrics
  Prometheus                http://$PROM_LISTEN/
  Prometheus alerts         http://$PROM_LISTEN/alerts
  app via nginx -> uWSGI    http://$NGINX_LISTEN/
  app via gunicorn          http://$GUNICORN_BIND/

Example queries (open in Prometheus):
  every source up?                    $(q 'wsgi_exporter:source_up')
  uWSGI workers by state              $(q 'sum by (status) (uwsgi_worker_status)')
  nginx requests/s                    $(q 'sum by (source) (rate(nginx_http_requests_total[1m]))')
  uWSGI requests/s                    $(q 'sum by (stats_uri) (rate(uwsgi_worker_requests_total[1m]))')
  gunicorn requests/s (statsd)        $(q 'sum by (source) (rate(gunicorn_statsd_requests_total[1m]))')
  gunicorn answers by status code     $(q 'sum by (code) (rate(gunicorn_statsd_responses_total[1m]))')
  the app's own counter, merged       $(q 'sum by (multiproc_dir, code) (app_requests_total)')
  gunicorn p99 latency                $(q 'histogram_quantile(0.99, sum by (le) (rate(gunicorn_statsd_request_duration_seconds_bucket[1m])))')

Grafana: import dashboards/*.json with this Prometheus as data source.
Traffic: $TRAFFIC_RATE requests/s (404s, 500s, exceptions, slow requests; a burst every ${BURST_EVERY}s).
EOF
}

status() {
  local c pid
  for c in "${COMPONENTS[@]}"; do
    if pid=$(ours "$c"); then say "$c: running (pid $pid)"; else say "$c: not running"; fi
  done
}

case "${1:-run}" in
start) start ;;
stop) stop_all ;;
status) status ;;
run)
  trap 'say ""; say "stopping the demo"; stop_all; exit 0' INT TERM HUP
  start
  say "Ctrl-C stops the demo (or, from another shell: make demo-stop)."
  while :; do sleep 1; done
  ;;
*) die "usage: $0 [run|start|stop|status]" ;;
esac
