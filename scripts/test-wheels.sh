#!/usr/bin/env bash
# Test of scripts/wheels.sh with the smallest pinned wheel (nvidia-cuda-runtime, 2 MB) in a
# private temporary cache: a fresh fetch verifies; a truncated (half-downloaded) wheel in the
# cache is detected and fetched again; a wrong pin fails with the package named and the ways out.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/wheels.sh"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
name=nvidia-cuda-runtime version=13.0.96
sha=$(sed -n 's/^CUDART_SHA256=//p' "$root/scripts/libtorch.sh")
platforms=(manylinux2014_x86_64 manylinux_2_17_x86_64)
passed=0
fail() { echo "wheel provisioning test FAILED: $*"; echo "$passed passed, 1 failed"; exit 1; }

whl=$(fetch_wheel "$dir/wheels" $name $version "$sha" "${platforms[@]}") || fail "fresh fetch"
[[ $(sha256sum "$whl" | cut -d' ' -f1) == "$sha" ]] || fail "fresh fetch: wrong sha256"
passed=$((passed + 1))

truncate -s 100000 "$whl"
whl2=$(fetch_wheel "$dir/wheels" $name $version "$sha" "${platforms[@]}" 2>"$dir/log") || fail "refetch after truncation"
grep -q "does not match the pinned one" "$dir/log" || fail "the corrupt wheel was not reported: $(cat "$dir/log")"
[[ $(sha256sum "$whl2" | cut -d' ' -f1) == "$sha" ]] || fail "a corrupt cached wheel was used"
passed=$((passed + 1))

WHEEL_WAYS_OUT="LIBTORCH=/path/to/libtorch"
if fetch_wheel "$dir/other" $name $version "$(printf '0%.0s' {1..64})" "${platforms[@]}" >/dev/null 2>"$dir/log"; then
  fail "a wrong sha256 pin was accepted"
fi
grep -q "FAILED to download $name==$version" "$dir/log" && grep -q "LIBTORCH=/path/to/libtorch" "$dir/log" \
  || fail "the failure does not name the package and the way out: $(cat "$dir/log")"
[[ -z $(ls "$dir/other" 2>/dev/null | grep '\.whl$') ]] || fail "a wheel with the wrong hash was left in the cache"
passed=$((passed + 1))
echo "wheel provisioning: fresh fetch verified, corrupt cache refetched, wrong pin refused with the way out"
echo "$passed passed, 0 failed"
