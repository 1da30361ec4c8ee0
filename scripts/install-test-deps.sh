#!/usr/bin/env bash
# Installs the real programs the tests run against (Debian packages), when any is missing.
# Needs root for apt-get; without it, it says what to install and fails.
set -euo pipefail

packages=(
  uwsgi-core uwsgi-plugin-python3   # uWSGI 2.0 and its Python 3 plugin
  nginx-light                       # nginx with stub_status
  gunicorn python3-flask            # gunicorn 20.1 and the test app's framework
  python3-prometheus-client         # prometheus_client 0.16 (multiprocess mode)
  prometheus                        # promtool and a real Prometheus server
  wrk                               # load generator for benchmarks
  procps psmisc curl ca-certificates openssl
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "test dependencies: all installed"
  exit 0
fi
echo "test dependencies missing: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "run as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts packaged daemons where it can; the tests start their own on free ports.
for svc in nginx prometheus; do
  pkill -x "$svc" 2>/dev/null || true
done
echo "test dependencies: installed ${missing[*]}"
