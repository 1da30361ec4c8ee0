#!/usr/bin/env bash
# make crossbuild: the binary for every platform of .promu.yml's crossbuild list (PLATFORMS, a
# space-separated list, picks others: entries are regexps as for `promu crossbuild -p`), each
# in .build/<os>-<arch>/ as promu lays them out (linux/armv7 -> .build/linux-armv7, GOARM=7).
#
# With promu and a Docker daemon: `promu crossbuild`, which builds in the golang-builder image.
# Otherwise, for each platform, what that image runs: GOOS=<os> GOARCH=<arch> [GOARM=<n>]
# make build PREFIX=.build/<os>-<arch>; `make build` is `promu build` when promu is installed
# and go build with the same flags and ldflags when it is not (USE_PROMU=yes|no).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/promu-config.sh

MAKE=${MAKE:-make}
USE_PROMU=${USE_PROMU:-no}
read -r -a entries <<<"${PLATFORMS:-}"
mapfile -t platforms < <(promu_platforms "${entries[@]}")
[ ${#platforms[@]} -gt 0 ] || { echo "crossbuild: no platform to build" >&2; exit 1; }
echo ">> crossbuild: ${platforms[*]}"

if [ "$USE_PROMU" = yes ] && command -v docker >/dev/null && timeout 20 docker info >/dev/null 2>&1; then
  args=()
  for p in "${platforms[@]}"; do args+=(-p "^$p\$"); done
  exec "${PROMU:-promu}" crossbuild -v "${args[@]}"
fi

for p in "${platforms[@]}"; do
  os=${p%%/*} arch=${p##*/}
  case "$os" in
    windows) echo "crossbuild: $p: windows binaries (.exe) are not handled here" >&2; exit 1 ;;
  esac
  prefix=".build/$os-$arch"
  mkdir -p "$prefix"
  if [[ "$arch" =~ ^armv([0-9])$ ]]; then
    echo "# $os-$arch"
    GOOS=$os GOARCH=arm GOARM=${BASH_REMATCH[1]} "$MAKE" --no-print-directory build PREFIX="$prefix" USE_PROMU="$USE_PROMU"
  else
    echo "# $os-$arch"
    env -u GOARM GOOS="$os" GOARCH="$arch" "$MAKE" --no-print-directory build PREFIX="$prefix" USE_PROMU="$USE_PROMU"
  fi
done
