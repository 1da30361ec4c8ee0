#!/usr/bin/env bash
# make tarballs: one release tarball per .build/<os>-<arch>/ and their checksums, as
# `promu crossbuild tarballs` and `promu checksum .tarballs` make them:
#   .tarballs/<name>-<version>.<os>-<arch>.tar.gz, holding the directory
#   <name>-<version>.<os>-<arch>/ with tarball.files of .promu.yml and the binaries;
#   .tarballs/sha256sums.txt, "<sha256>  <file>" for every file in .tarballs, in name order.
# <name> is the base name of .promu.yml's repository.path (promu takes it from the git remote,
# the same name in a clone of the repository), <version> the VERSION file.
# With USE_PROMU=yes promu makes them; otherwise this script does, with tar and sha256sum.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/promu-config.sh

USE_PROMU=${USE_PROMU:-no}
name=$(promu_project_name)
version=$(tr -d ' \n\r' <VERSION)
mapfile -t files < <(promu_list tarball files)
mapfile -t binaries < <(promu_binaries)
for f in "${files[@]}"; do
  [ -e "$f" ] || { echo "tarballs: $f (tarball.files in .promu.yml) does not exist" >&2; exit 1; }
done
[ -d .build ] || { echo "tarballs: no .build directory: run make crossbuild first" >&2; exit 1; }
mapfile -t dirs < <(cd .build && LC_ALL=C ls -1)
[ ${#dirs[@]} -gt 0 ] || { echo "tarballs: .build is empty: run make crossbuild first" >&2; exit 1; }

if [ "$USE_PROMU" = yes ]; then
  "${PROMU:-promu}" crossbuild tarballs
  "${PROMU:-promu}" checksum .tarballs
else
  echo ">> building release tarballs"
  mkdir -p .tarballs
  trap 'rm -rf .release' EXIT
  for d in "${dirs[@]}"; do
    [[ "$d" =~ ^[^-]+-[^-]+$ ]] || { echo "tarballs: bad .build/$d directory naming, should be <GOOS>-<GOARCH>" >&2; exit 1; }
    dir="$name-$version.$d"
    rm -rf .release
    mkdir -p ".release/$dir"
    cp -dR "${files[@]}" ".release/$dir/"
    for b in "${binaries[@]}"; do
      cp -dR ".build/$d/$b" ".release/$dir/"
    done
    echo " >   $dir.tar.gz"
    tar zcf ".tarballs/$dir.tar.gz" -C .release "$dir"
  done
  sums=$(mktemp)
  (cd .tarballs && LC_ALL=C find . -maxdepth 1 -type f -printf '%P\n' | LC_ALL=C sort | xargs -r -d '\n' sha256sum --) >"$sums"
  mv "$sums" .tarballs/sha256sums.txt
  chmod 0644 .tarballs/sha256sums.txt
fi

# Whoever made them, the names must be these (promu names tarballs after the git remote).
for d in "${dirs[@]}"; do
  t=".tarballs/$name-$version.$d.tar.gz"
  [ -f "$t" ] || { echo "tarballs: $t is missing (promu takes <name> from the git remote's URL)" >&2; exit 1; }
done
ls -l .tarballs
