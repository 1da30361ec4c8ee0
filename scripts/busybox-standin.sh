#!/usr/bin/env bash
# busybox-standin.sh ARCH IMAGE: builds IMAGE with podman, a LOCAL STAND-IN for
# quay.io/prometheus/busybox-linux-ARCH:latest, for tests on machines that cannot reach quay.io.
# It holds what our image needs of its base: /etc/passwd and /etc/group with the user nobody
# (65534:65534), plus Debian's busybox-static as /bin/busybox when ARCH is this machine's (the
# Debian binary exists only for it). Never publish an image built on it: it is not the base
# users get. Only COPY steps: it builds where containers cannot run.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 ARCH IMAGE" >&2; exit 2; }
arch=$1 image=$2
case "$arch" in
  armv5|armv6|armv7) platform="linux/arm/v${arch#armv}" ;;
  *) platform="linux/$arch" ;;
esac
case "$(dpkg --print-architecture 2>/dev/null || true)" in
  amd64) host=amd64 ;; arm64) host=arm64 ;; armhf) host=armv7 ;; ppc64el) host=ppc64le ;; s390x) host=s390x ;;
  *) host=unknown ;;
esac

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' >"$ctx/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' >"$ctx/group"
{
  echo "FROM scratch"
  echo "COPY passwd group /etc/"
  if [ "$arch" = "$host" ]; then
    if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed'; then
      echo "busybox-standin: Debian's busybox-static is not installed (scripts/install-test-deps.sh installs it)" >&2
      exit 1
    fi
    cp /bin/busybox "$ctx/busybox"
    echo "COPY busybox /bin/busybox"
  fi
  echo "LABEL io.wsgi-exporter.base-standin=\"LOCAL STAND-IN for quay.io/prometheus/busybox-linux-$arch:latest, tests only\""
} >"$ctx/Containerfile"

if podman image exists "$image"; then
  echo "busybox-standin: reusing the LOCAL STAND-IN $image for quay.io/prometheus/busybox-linux-$arch:latest (tests only, never publish)" >&2
  exit 0
fi
cat >&2 <<MSG
################################################################################
# quay.io/prometheus/busybox-linux-$arch:latest cannot be pulled here.
# Building a LOCAL STAND-IN base instead: $image
# (scratch + /etc/passwd, /etc/group with nobody$([ "$arch" = "$host" ] && echo " + Debian's busybox-static")).
# Images built on it are for tests only: NEVER publish them.
################################################################################
MSG
podman build --quiet --platform "$platform" --pull=never --layers=false -t "$image" -f "$ctx/Containerfile" "$ctx"
