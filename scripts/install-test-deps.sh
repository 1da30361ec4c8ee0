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
  chromium                          # headless browser: the landing page test
  podman busybox-static             # the release test builds the image (busybox: its stand-in base)
  redis-server python3-redis        # Redis store of gunicorn-prometheus-exporter (test writer)
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
# Debian starts a packaged daemon when it installs it (nginx on port 80, Prometheus on 9090);
# the tests and the demo start their own on free ports. policy-rc.d, Debian's switch for this,
# forbids starting services during the install (no daemon is started, none has to be killed);
# it is removed afterwards unless it was there before.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# scripts/install-test-deps.sh (wsgi_exporter): no service starts during its apt-get install\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "test dependencies: installed ${missing[*]}"
