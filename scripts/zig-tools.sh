#!/usr/bin/env bash
# Provision zig and cargo-zigbuild (the linker for the portable libcomir.so, see
# scripts/build-portable-lib.sh) from their pinned PyPI wheels, sha256-verified, into the
# per-user cache; .deps/zig-tools links to it. Prints the folder holding both executables.
set -euo pipefail

ZIG_VERSION=0.17.1
ZIGBUILD_VERSION=0.24.1
ZIG_SHA256=ea6cc5d87b033cf0aedfbc8f9549a908cae6c50ac31f1698188fa48a74524b54
ZIGBUILD_SHA256=238a1ab54a95053a4eadc34775c81f795a8ad75f80bfed63f3f445f518102375

root=$(cd "$(dirname "$0")/.." && pwd)
link="$root/.deps/zig-tools"
cache=${COMIR_CACHE:-$HOME/.cache/comir}
dest="$cache/zig-tools-$ZIG_VERSION-$ZIGBUILD_VERSION"
mkdir -p "$root/.deps"

if [[ ! -f "$dest/.complete" ]]; then
  source "$root/scripts/wheels.sh"
  WHEEL_WAYS_OUT="put zig $ZIG_VERSION and cargo-zigbuild $ZIGBUILD_VERSION in $dest/bin yourself (and touch $dest/.complete)"
  echo "[zig-tools] fetching zig $ZIG_VERSION (~100 MB, once) and cargo-zigbuild $ZIGBUILD_VERSION from PyPI" >&2
  zig_whl=$(fetch_wheel "$cache/wheels" ziglang "$ZIG_VERSION" "$ZIG_SHA256" \
    manylinux_2_12_x86_64 manylinux2010_x86_64)
  zigbuild_whl=$(fetch_wheel "$cache/wheels" cargo-zigbuild "$ZIGBUILD_VERSION" "$ZIGBUILD_SHA256" \
    manylinux1_x86_64 manylinux_2_5_x86_64)
  tmp=$(mktemp -d "$cache/zig-tools.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  python3 - "$zig_whl" "$zigbuild_whl" "$tmp" <<'PY'
import sys, zipfile, os
zig_whl, zigbuild_whl, out = sys.argv[1:4]
with zipfile.ZipFile(zig_whl) as z:
    z.extractall(out, [n for n in z.namelist() if n.startswith("ziglang/")])
os.makedirs(f"{out}/bin")
with zipfile.ZipFile(zigbuild_whl) as z:
    member = next(n for n in z.namelist() if n.endswith("/scripts/cargo-zigbuild"))
    with z.open(member) as src, open(f"{out}/bin/cargo-zigbuild", "wb") as dst:
        dst.write(src.read())
PY
  chmod +x "$tmp/ziglang/zig" "$tmp/bin/cargo-zigbuild"
  ln -s ../ziglang/zig "$tmp/bin/zig"
  rm -rf "$dest"
  chmod 755 "$tmp"
  mv "$tmp" "$dest"
  trap - EXIT
  touch "$dest/.complete"
fi
ln -sfn "$dest" "$link"
echo "$link/bin"
