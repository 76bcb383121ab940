#!/usr/bin/env bash
# The installed native library, as a user copies it: RUNPATH is `$ORIGIN` only (no path of the
# build machine), and every library it needs is in the install folder or a base system library.
# Prints the newest GLIBC / GLIBCXX symbol versions it requires (the oldest Linux it loads on).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
lib="$root/build/fiji/lib/linux64/libcomir.so"
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
glibc=$(objdump -T "$lib" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n 1)
glibcxx=$(objdump -T "$lib" | grep -o 'GLIBCXX_[0-9.]*' | sort -uV | tail -n 1)
echo "native library: RUNPATH \$ORIGIN only, every needed library in lib/linux64; requires ${glibc:-no GLIBC symbols} / ${glibcxx:-no GLIBCXX symbols}"
echo "1 passed, 0 failed"
