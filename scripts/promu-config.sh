# shellcheck shell=bash
# Sourced by the release scripts: reads what they need from .promu.yml, so that promu and the
# scripts build from one list. It reads the subset of YAML that file uses: top-level sections,
# keys indented by two spaces, list items ("- value") below them.

# promu_list SECTION KEY prints the items of the list SECTION.KEY, one per line.
promu_list() {
  awk -v sec="$1" -v key="$2" '
    /^[^ #]/ { insec = ($0 ~ "^" sec ":"); inkey = 0; next }
    insec && /^  [^ #-]/ { inkey = ($0 ~ "^  " key ":"); next }
    insec && inkey && /^ *- / { sub(/^ *- */, ""); sub(/[ \t]+#.*$/, ""); sub(/[ \t]+$/, ""); print }
  ' .promu.yml
}

# promu_binaries prints the names of build.binaries.
promu_binaries() {
  promu_list build binaries | sed -n 's/^name:[[:space:]]*//p'
}

# promu_project_name prints the base name of repository.path: the name promu gives tarballs
# when the git remote is that repository.
promu_project_name() {
  local path
  path=$(awk '/^repository:/ { r = 1; next } /^[^ #]/ { r = 0 } r && /^  path:/ { print $2 }' .promu.yml)
  [ -n "$path" ] || { echo "repository.path missing in .promu.yml" >&2; return 1; }
  basename "$path"
}

# promu_platforms prints the platforms promu crossbuild builds for the entries given as
# arguments (default: crossbuild.platforms): each entry is an unanchored regexp matched against
# promu's own platform names; the union, sorted and without duplicates. Entries that match no
# name are reported, as promu reports them.
promu_platforms() {
  local entries=("$@") known e matched out=""
  [ ${#entries[@]} -gt 0 ] || mapfile -t entries < <(promu_list crossbuild platforms)
  # The platforms promu v0.17 knows (defaultPlatforms in its cmd/crossbuild.go).
  known="aix/ppc64 darwin/amd64 darwin/arm64 dragonfly/amd64 freebsd/386 freebsd/amd64
freebsd/arm64 freebsd/armv6 freebsd/armv7 illumos/amd64 linux/386 linux/amd64 linux/arm64
linux/armv5 linux/armv6 linux/armv7 linux/mips linux/mips64 linux/mips64le linux/mipsle
linux/ppc64 linux/ppc64le linux/riscv64 linux/s390x netbsd/386 netbsd/amd64 netbsd/arm64
netbsd/armv6 netbsd/armv7 openbsd/386 openbsd/amd64 openbsd/arm64 openbsd/armv7 windows/386
windows/amd64 windows/arm64"
  for e in "${entries[@]}"; do
    matched=$(tr ' ' '\n' <<<"$known" | grep -E -- "$e" || true)
    if [ -z "$matched" ]; then
      echo "/!\\ unknown/unhandled platform: $e" >&2
      continue
    fi
    out+="$matched"$'\n'
  done
  printf '%s' "$out" | LC_ALL=C sort -u
}
