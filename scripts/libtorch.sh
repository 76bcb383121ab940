#!/usr/bin/env bash
# Provision a CPU libtorch 2.13.0 (what tch 0.26 expects) from PyPI wheels, because no
# libtorch download site is reachable. Prints the folder to use as LIBTORCH on stdout.
#
#   LIBTORCH=$(scripts/libtorch.sh)
#
# Reuse: wheels and the assembled folder live in a per-user cache (COMIR_CACHE, default
# ~/.cache/comir) so fresh clones on the same machine do not fetch 530 MB again; the
# repository's git-ignored .deps/libtorch is a link to it.
# Bring your own: if LIBTORCH is already set (a CUDA libtorch, or LIBTORCH_USE_PYTORCH=1
# with a full PyTorch 2.13 install), this script does nothing and echoes it back.
set -euo pipefail

TORCH_VERSION=2.13.0
CUDART_VERSION=13.0.96
CUPTI_VERSION=13.0.85
# sha256 of the exact wheels (cp311 manylinux_2_28 torch; the nvidia wheels are py3-none).
TORCH_SHA256=60fcdcb2f3876e21146cb4524ef06397d727ca9ad5f020818547e25075fe3cb7
CUDART_SHA256=7f82250d7782aa23b6cfe765ecc7db554bd3c2870c43f3d1821f1d18aebf0548
CUPTI_SHA256=4eb01c08e859bf924d222250d2e8f8b8ff6d3db4721288cf35d14252a4d933c8

root=$(cd "$(dirname "$0")/.." && pwd)
link="$root/.deps/libtorch"
if [[ -n "${LIBTORCH:-}" && "$(realpath -m "$LIBTORCH")" != "$(realpath -m "$link")" ]]; then echo "$LIBTORCH"; exit 0; fi
if [[ "${LIBTORCH_USE_PYTORCH:-}" == 1 ]]; then echo ""; exit 0; fi

cache=${COMIR_CACHE:-$HOME/.cache/comir}
dest="$cache/libtorch-$TORCH_VERSION-cpu"
mkdir -p "$root/.deps"

if [[ ! -f "$dest/.complete" ]]; then
  log() { echo "[libtorch] $*" >&2; }
  source "$root/scripts/wheels.sh"
  WHEEL_WAYS_OUT="LIBTORCH=/path/to/libtorch make ...   use a libtorch $TORCH_VERSION you already have (CPU or CUDA)
LIBTORCH_USE_PYTORCH=1 make ...       use the libtorch of an installed PyTorch $TORCH_VERSION (pip install torch==$TORCH_VERSION)"
  wheels="$cache/wheels"
  log "fetching torch==$TORCH_VERSION (~530 MB, once) and two CUDA runtime wheels from PyPI, sha256-verified"
  torch_whl=$(fetch_wheel "$wheels" torch "$TORCH_VERSION" "$TORCH_SHA256" manylinux_2_28_x86_64)
  cudart_whl=$(fetch_wheel "$wheels" nvidia-cuda-runtime "$CUDART_VERSION" "$CUDART_SHA256" \
    manylinux2014_x86_64 manylinux_2_17_x86_64)
  cupti_whl=$(fetch_wheel "$wheels" nvidia-cuda-cupti "$CUPTI_VERSION" "$CUPTI_SHA256" manylinux_2_25_x86_64)
  py=$(command -v python3 || command -v python)
  tmp=$(mktemp -d "$cache/assemble.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  log "assembling a CPU libtorch in $dest"
  (cd "$tmp" && "$py" - "$torch_whl" "$cudart_whl" "$cupti_whl" <<'PY'
import sys, zipfile, os
torch_whl, cudart_whl, cupti_whl = sys.argv[1:4]
keep_libs = {"libtorch_cpu.so", "libc10.so", "libgomp.so.1", "libshm.so", "libtorch_global_deps.so"}
os.makedirs("libtorch/lib", exist_ok=True)
with zipfile.ZipFile(torch_whl) as z:
    for name in z.namelist():
        if name.startswith("torch/include/") and not name.endswith("/"):
            z.extract(name, "x")
        elif name.startswith("torch/lib/") and os.path.basename(name) in keep_libs:
            with z.open(name) as src, open("libtorch/lib/" + os.path.basename(name), "wb") as dst:
                while chunk := src.read(1 << 24):
                    dst.write(chunk)
    os.rename("x/torch/include", "libtorch/include")
for whl, lib in ((cudart_whl, "libcudart.so.13"), (cupti_whl, "libcupti.so.13")):
    with zipfile.ZipFile(whl) as z:
        member = next(n for n in z.namelist() if n.endswith("/" + lib))
        with z.open(member) as src, open("libtorch/lib/" + lib, "wb") as dst:
            dst.write(src.read())
PY
  )
  # The wheel's libtorch.so pulls in libtorch_cuda.so (~470 MB, plus the CUDA stack). tch links
  # -ltorch, so put a tiny stand-in there that only depends on the CPU libraries.
  lib="$tmp/libtorch/lib"
  echo 'void comir_libtorch_cpu_stub(void) {}' > "$tmp/stub.c"
  cc -shared -fPIC -o "$lib/libtorch.so" "$tmp/stub.c" -Wl,--no-as-needed -L"$lib" -ltorch_cpu -lc10 \
     -Wl,-rpath,'$ORIGIN' -Wl,-soname,libtorch.so
  echo "$TORCH_VERSION" > "$tmp/libtorch/build-version"
  chmod -R u+w "$tmp/libtorch"
  rm -rf "$dest"
  mv "$tmp/libtorch" "$dest"
  touch "$dest/.complete"
fi
ln -sfn "$dest" "$link"
echo "$link"
