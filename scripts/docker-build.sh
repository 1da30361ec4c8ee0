#!/usr/bin/env bash
# make docker: the image for each of DOCKER_ARCHS from .build/linux-<arch>/wsgi_exporter (make
# crossbuild), as prometheus-community images are built: Dockerfile with --build-arg ARCH=<arch>
# OS=linux, tagged $DOCKER_REPO/$DOCKER_IMAGE_NAME-linux-<arch>:$DOCKER_IMAGE_TAG, plus the OCI
# labels org.opencontainers.image.version and .revision (--build-arg VERSION, REVISION). Then the
# manifest list $DOCKER_REPO/$DOCKER_IMAGE_NAME:$DOCKER_IMAGE_TAG tying them together.
#
# DOCKER_ENGINE=auto takes docker where a daemon answers, podman otherwise. The Dockerfile has
# only COPY/LABEL/EXPOSE/USER/ENTRYPOINT steps: every architecture builds without emulation.
# BASE_STANDIN=auto (make docker-test) builds on a local stand-in of the busybox base
# (scripts/busybox-standin.sh, podman only) for each architecture whose base cannot be pulled.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${DOCKER_ARCHS:?}" "${DOCKER_REPO:?}" "${DOCKER_IMAGE_NAME:?}" "${DOCKER_IMAGE_TAG:?}" "${VERSION:?}" "${REVISION:?}"
engine=${DOCKER_ENGINE:-auto}
if [ "$engine" = auto ]; then
  if command -v docker >/dev/null && timeout 20 docker info >/dev/null 2>&1; then
    engine=docker
  elif command -v podman >/dev/null; then
    engine=podman
  else
    echo "docker-build: no docker daemon answers and podman is not installed" >&2
    exit 1
  fi
fi
echo ">> building images with $engine"

read -r -a archs <<<"$DOCKER_ARCHS"
list="$DOCKER_REPO/$DOCKER_IMAGE_NAME:$DOCKER_IMAGE_TAG"
images=()
for arch in "${archs[@]}"; do
  [ -x ".build/linux-$arch/wsgi_exporter" ] || { echo "docker-build: .build/linux-$arch/wsgi_exporter missing: make crossbuild" >&2; exit 1; }
  case "$arch" in
    armv5|armv6|armv7) platform="linux/arm/v${arch#armv}" ;;
    *) platform="linux/$arch" ;;
  esac
  image="$DOCKER_REPO/$DOCKER_IMAGE_NAME-linux-$arch:$DOCKER_IMAGE_TAG"
  base="quay.io/prometheus/busybox-linux-$arch:latest"
  args=(build --platform "$platform" --build-arg ARCH="$arch" --build-arg OS=linux
    --build-arg VERSION="$VERSION" --build-arg REVISION="$REVISION" -t "$image" -f Dockerfile)
  if [ "$engine" = podman ]; then
    args+=(--layers=false) # no intermediate images left in the (shared) storage
  fi
  if [ "${BASE_STANDIN:-}" = auto ] && ! { "$engine" image inspect "$base" >/dev/null 2>&1 ||
    timeout 120 "$engine" pull --platform "$platform" "$base" >/dev/null; }; then
    [ "$engine" = podman ] || { echo "docker-build: the base stand-in needs podman (DOCKER_ENGINE=podman)" >&2; exit 1; }
    standin="$DOCKER_REPO/busybox-standin-linux-$arch:latest"
    ./scripts/busybox-standin.sh "$arch" "$standin"
    args+=(--pull=never --from "$standin")
  fi
  echo "$engine ${args[*]} ."
  "$engine" "${args[@]}" .
  images+=("$image")
done

if [ "$engine" = podman ]; then
  if podman manifest exists "$list"; then
    podman manifest rm "$list" >/dev/null
  fi
  podman manifest create "$list" >/dev/null
  for image in "${images[@]}"; do
    podman manifest add "$list" "containers-storage:$image" >/dev/null
  done
  echo ">> manifest list $list: ${images[*]}"
else
  # docker keeps manifest lists in registries only: push the images, then tie them.
  echo ">> images: ${images[*]}"
  echo ">> for the manifest list, push them, then:"
  echo "   docker manifest create $list ${images[*]} && docker manifest push $list"
fi
