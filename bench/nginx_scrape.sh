#!/bin/sh
# Scrape throughput of the nginx source against a real nginx: wrk hammers the exporter's
# /metrics while it reads stub_status over TCP and over a unix socket, then nginx's own request
# counter is checked against wrk's count (each exporter scrape is one request per source).
#
#   bench/nginx_scrape.sh [seconds] [connections]      (run from the repository root)
set -eu
SECS=${1:-10}
CONNS=${2:-4}
DIR=$(mktemp -d /tmp/nginx-bench.XXXXXX)
NGINX_PID= EXP_PID=
cleanup() {
	[ -n "$EXP_PID" ] && kill "$EXP_PID" 2>/dev/null || true
	[ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null || true
	sleep 0.3
	rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
NPORT=$(port)
XPORT=$(port)
mkdir -p "$DIR/tmp"
cat > "$DIR/nginx.conf" <<CONF
worker_processes 1;
pid nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path tmp/body; proxy_temp_path tmp/proxy; fastcgi_temp_path tmp/fastcgi;
  uwsgi_temp_path tmp/uwsgi; scgi_temp_path tmp/scgi;
  server { listen 127.0.0.1:$NPORT; listen unix:$DIR/nginx.sock; location = /stub_status { stub_status; } }
}
CONF
nginx -p "$DIR/" -c "$DIR/nginx.conf" -e stderr -g 'daemon off;' &
NGINX_PID=$!
go build -o "$DIR/wsgi_exporter" ./cmd/wsgi_exporter
sleep 0.5
"$DIR/wsgi_exporter" --web.listen-address=127.0.0.1:$XPORT --log.level=warn \
	--nginx.scrape-uri=http://127.0.0.1:$NPORT/stub_status \
	--nginx.scrape-uri="unix://$DIR/nginx.sock?path=/stub_status" 2>"$DIR/exporter.log" &
EXP_PID=$!
sleep 1
wrk -t 2 -c "$CONNS" -d "${SECS}s" --latency "http://127.0.0.1:$XPORT/metrics" | tee "$DIR/wrk.txt"
curl -s "http://127.0.0.1:$NPORT/stub_status"
echo "nginx requests above = 2 x exporter scrapes + this curl (+ scrapes cut off when wrk stopped)"
