#!/usr/bin/env bash
# Builds the libcomir.so that ships in the Fiji install: linked against glibc 2.28 (zig's
# versioned glibc stubs, via cargo-zigbuild) so it loads wherever the torch wheel's own
# libraries load (manylinux_2_28: RHEL/Rocky 8, Ubuntu 20.04, Debian 10 and newer), not only on
# systems as new as the build machine. scripts/check-native.sh verifies the result.
# Output: target/portable/x86_64-unknown-linux-gnu/release/libcomir.so
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$("$root/scripts/zig-tools.sh"):$PATH"
# tch's C++ wrapper must be compiled against libstdc++ (libtorch's C++ library), not zig's libc++.
export CXX_x86_64_unknown_linux_gnu=g++ CXXSTDLIB_x86_64_unknown_linux_gnu=stdc++
export COMIR_PORTABLE=1 LIBTORCH="${LIBTORCH:-$root/.deps/libtorch}"
cargo-zigbuild zigbuild --release --lib --target x86_64-unknown-linux-gnu.2.28 --target-dir target/portable
