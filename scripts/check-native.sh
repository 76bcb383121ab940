#!/usr/bin/env bash
# The installed native library, as a user copies it: RUNPATH is `$ORIGIN` only (no path of the
# build machine), and every library it needs is in the install folder or a base system library.
# And it loads on every Linux the torch wheel loads on (manylinux_2_28: glibc 2.28, GCC 8's
# libstdc++): no shipped library asks for a newer GLIBC / GLIBCXX / CXXABI symbol version, and
# libcomir.so asks for no unversioned symbol that no shipped library defines (such a symbol
# would be looked up in whatever system libraries are there, and missing on old ones).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
lib="${1:-$root/build/fiji/lib/linux64/libcomir.so}"
fail() { echo "native library check FAILED: $*"; echo "0 passed, 1 failed"; exit 1; }
[[ -f "$lib" ]] || fail "$lib not built (gradle fijiInstall)"
runpath=$(readelf -d "$lib" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p')
[[ "$runpath" == '$ORIGIN' ]] || fail "RUNPATH is '$runpath', expected only \$ORIGIN"
for needed in $(readelf -d "$lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
  case $needed in
    libc.so.*|libm.so.*|libgcc_s.so.*|libstdc++.so.*|ld-linux*|libpthread.so.*|libdl.so.*|librt.so.*) ;;
    *) [[ -f "$(dirname "$lib")/$needed" ]] || fail "$needed is needed but not in lib/linux64" ;;
  esac
done
newest() { objdump -T "$1" | { grep -o "$2_[0-9.]*" || true; } | sort -uV | tail -n 1; }
# newer VERSION LIMIT: true when VERSION (e.g. GLIBC_2.34) is newer than LIMIT (GLIBC_2.28).
newer() { [[ -n "$1" && "$(printf '%s\n%s\n' "$1" "$2" | sort -V | tail -n 1)" != "$2" ]]; }
for so in "$(dirname "$lib")"/*.so*; do
  for limit in GLIBC_2.28 GLIBCXX_3.4.25 CXXABI_1.3.11; do
    v=$(newest "$so" "${limit%_*}")
    if newer "$v" "$limit"; then
      fail "$(basename "$so") needs $v, newer than manylinux_2_28's $limit" \
        "(symbols: $(objdump -T "$so" | grep -F "($v)" | awk '{print $NF}' | head -n 5 | tr '\n' ' '))"
    fi
  done
done
defined=$(mktemp); trap 'rm -f "$defined"' EXIT
for so in "$(dirname "$lib")"/*.so*; do
  [[ $so == "$lib" ]] || nm -D --defined-only "$so" | awk '{print $NF}'
done | sed 's/@.*//' | sort -u > "$defined"
unbound=$(nm -D --undefined-only "$lib" | awk '$1 == "U" && $2 !~ /@/ {print $2}' | sort -u | comm -23 - "$defined")
[[ -z "$unbound" ]] || fail "libcomir.so needs unversioned symbols that no shipped library defines:" \
  "$(echo "$unbound" | head -n 8 | tr '\n' ' ')"
echo "native library: RUNPATH \$ORIGIN only, every needed library in lib/linux64;" \
  "libcomir.so requires $(newest "$lib" GLIBC) / $(newest "$lib" GLIBCXX) (manylinux_2_28: GLIBC_2.28 / GLIBCXX_3.4.25)"
echo "1 passed, 0 failed"
