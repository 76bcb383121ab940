# Sourced by libtorch.sh and demo-data.sh: fetch one pinned PyPI wheel into a cache folder,
# verified by sha256. A wheel already in the cache is checked again before use, so a
# half-downloaded or corrupt file is fetched anew, never used.
#
#   fetch_wheel DIR NAME VERSION SHA256 PLATFORM...   → prints the wheel's path
#
# PLATFORM: the tags the wheel really carries (pip's --platform admits only exact tags, and the
# nvidia wheels are manylinux2014/_2_17/_2_25, torch manylinux_2_28); pass every one it has.

wheel_log() { echo "[wheels] $*" >&2; }

# What the user can do instead; each caller sets WHEEL_WAYS_OUT (lines) before fetching.
wheel_ways_out() {
  [[ -n "${WHEEL_WAYS_OUT:-}" ]] || return 0
  wheel_log "ways out:"
  while IFS= read -r line; do wheel_log "  $line"; done <<<"$WHEEL_WAYS_OUT"
}

fetch_wheel() {
  local dir=$1 name=$2 version=$3 sha=$4; shift 4
  local file_prefix=${name//-/_}-$version-
  mkdir -p "$dir"
  local f
  for f in "$dir/$file_prefix"*.whl; do
    [[ -f "$f" ]] || continue
    if [[ $(sha256sum "$f" | cut -d' ' -f1) == "$sha" ]]; then echo "$f"; return 0; fi
    wheel_log "$(basename "$f"): sha256 does not match the pinned one (partial or corrupt download): fetching it again"
    rm -f "$f"
  done
  local py tmp platforms=()
  py=$(command -v python3 || command -v python || true)
  [[ -n "$py" ]] || { wheel_log "python3 with pip is needed to fetch $name==$version from PyPI"; wheel_ways_out; return 1; }
  for p in "$@"; do platforms+=(--platform "$p"); done
  tmp=$(mktemp -d "$dir/.download.XXXXXX")
  # The C++ part of these wheels does not depend on the Python version; pin one so any python3 works.
  if ! printf '%s==%s --hash=sha256:%s\n' "$name" "$version" "$sha" >"$tmp/req.txt" \
     || ! "$py" -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
          --python-version 3.11 --implementation cp "${platforms[@]}" \
          -d "$tmp" -r "$tmp/req.txt" >&2; then
    rm -rf "$tmp"
    wheel_log "FAILED to download $name==$version (platforms: $*, sha256 $sha) from PyPI"
    wheel_ways_out
    return 1
  fi
  f=$(ls "$tmp"/*.whl 2>/dev/null | head -n 1)
  if [[ -z "$f" || $(sha256sum "$f" | cut -d' ' -f1) != "$sha" ]]; then
    rm -rf "$tmp"
    wheel_log "FAILED: the downloaded $name==$version does not have the pinned sha256 $sha"
    wheel_ways_out
    return 1
  fi
  mv "$f" "$dir/"
  rm -rf "$tmp"
  echo "$dir/$(basename "$f")"
}
