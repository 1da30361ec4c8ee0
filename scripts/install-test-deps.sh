#!/usr/bin/env bash
# Installs the real programs the tests run against (Debian packages), when any is missing.
# Needs root for apt-get; without it, it says what to install and fails.
set -euo pipefail

# What the tests run, and the Debian package that provides it when it is missing. Each is
# checked by the program (or module, or file) the tests use, not by a package name: an nginx
# from another package (nginx-full, nginx-extras) or built locally is used as it is, instead of
# installing nginx-light next to it.
missing=()
need() { # need PACKAGE CHECK...: PACKAGE is missing unless CHECK succeeds
  local pkg=$1
  shift
  "$@" >/dev/null 2>&1 || missing+=("$pkg")
}
have() { command -v "$1"; }
py() { /usr/bin/python3 -c "import $1"; }

need uwsgi-core test -x /usr/bin/uwsgi                                        # uWSGI 2.0
need uwsgi-plugin-python3 test -e /usr/lib/uwsgi/plugins/python3_plugin.so    # its Python 3 plugin
need nginx-light have nginx                                                   # nginx with stub_status
need gunicorn test -x /usr/bin/gunicorn                                       # gunicorn 20.1
need python3-flask py flask                                                   # the test app's framework
need python3-prometheus-client py prometheus_client                          # 0.16, multiprocess mode
need prometheus have prometheus                                               # a real Prometheus server
need prometheus have promtool                                                 # ... and promtool
need wrk have wrk                                                             # load generator for benchmarks
need chromium have chromium                                                   # headless browser: the landing page test
need podman have podman                                                       # the release test builds the image
# busybox: the stand-in base image copies Debian's static build (scripts/busybox-standin.sh
# checks this package by name), so here the package is what is needed.
need busybox-static sh -c "dpkg-query -W -f='\${Status}' busybox-static | grep -q 'install ok installed'"
need redis-server have redis-server                                           # Redis store of gunicorn-prometheus-exporter
need python3-redis py redis                                                   # ... its test writer
need procps have ps
need psmisc have fuser
need curl have curl
need ca-certificates test -s /etc/ssl/certs/ca-certificates.crt
need openssl have openssl
need util-linux have prlimit                                                  # e2e: a small open-file limit

# A program that is there but lacks what the tests need is not replaced: say so and stop.
if have nginx >/dev/null && ! nginx -V 2>&1 | grep -q -- '--with-http_stub_status_module'; then
  echo "$(command -v nginx) has no stub_status module: the tests need one (Debian's nginx-light has it); not replacing it" >&2
  exit 1
fi
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | awk 'NF && !seen[$0]++')
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
# it is removed afterwards unless it was there before. (POLICY_RC_D: for the script's own test.)
policy=${POLICY_RC_D:-/usr/sbin/policy-rc.d}
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# scripts/install-test-deps.sh (wsgi_exporter): no service starts during its apt-get install\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "test dependencies: installed ${missing[*]}"
