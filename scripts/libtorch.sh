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

root=$(cd "$(dirname "$0")/.." && pwd)
link="$root/.deps/libtorch"
if [[ -n "${LIBTORCH:-}" && "$(realpath -m "$LIBTORCH")" != "$(realpath -m "$link")" ]]; then echo "$LIBTORCH"; exit 0; fi
if [[ "${LIBTORCH_USE_PYTORCH:-}" == 1 ]]; then echo ""; exit 0; fi

cache=${COMIR_CACHE:-$HOME/.cache/comir}
dest="$cache/libtorch-$TORCH_VERSION-cpu"
mkdir -p "$root/.deps"

if [[ ! -f "$dest/.complete" ]]; then
  log() { echo "[libtorch] $*" >&2; }
  wheels="$cache/wheels"
  mkdir -p "$wheels"
  py=$(command -v python3 || command -v python || true)
  [[ -n "$py" ]] || { log "python3 with pip is needed to fetch the torch wheel from PyPI"; exit 1; }
  if ! ls "$wheels"/torch-$TORCH_VERSION-*.whl >/dev/null 2>&1 \
     || ! ls "$wheels"/nvidia_cuda_runtime-$CUDART_VERSION-*.whl >/dev/null 2>&1 \
     || ! ls "$wheels"/nvidia_cuda_cupti-$CUPTI_VERSION-*.whl >/dev/null 2>&1; then
    log "downloading torch==$TORCH_VERSION (~530 MB) and two CUDA runtime wheels from PyPI"
    # The wheel's C++ part does not depend on the Python version; pin one so any python3 works.
    "$py" -m pip download --quiet --no-deps --only-binary=:all: \
      --python-version 3.11 --platform manylinux_2_28_x86_64 --implementation cp \
      -d "$wheels" "torch==$TORCH_VERSION" \
      "nvidia-cuda-runtime==$CUDART_VERSION" "nvidia-cuda-cupti==$CUPTI_VERSION" >&2
  fi
  tmp=$(mktemp -d "$cache/assemble.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  log "assembling a CPU libtorch in $dest"
  (cd "$tmp" && "$py" - "$wheels" <<'PY'
import sys, zipfile, glob, os
wheels = sys.argv[1]
keep_libs = {"libtorch_cpu.so", "libc10.so", "libgomp.so.1", "libshm.so", "libtorch_global_deps.so"}
torch_whl = glob.glob(os.path.join(wheels, "torch-*.whl"))[0]
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
for pattern, lib in (("nvidia_cuda_runtime-*.whl", "libcudart.so.13"), ("nvidia_cuda_cupti-*.whl", "libcupti.so.13")):
    with zipfile.ZipFile(glob.glob(os.path.join(wheels, pattern))[0]) as z:
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
