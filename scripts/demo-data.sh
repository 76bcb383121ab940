#!/usr/bin/env bash
# Fetch the demo/test images from a package registry at set-up time (nothing is committed):
# scikit-image's bundled ihc.png (immunohistochemistry, 512×512 RGB) from its PyPI wheel.
# Writes them to .deps/demo/ and reuses the per-user cache (COMIR_CACHE).
set -euo pipefail
SKIMAGE_VERSION=0.26.0
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${COMIR_CACHE:-$HOME/.cache/comir}
out="$root/.deps/demo"
[[ -f "$out/ihc.png" ]] && exit 0
mkdir -p "$cache/wheels" "$out"
if ! ls "$cache"/wheels/scikit_image-$SKIMAGE_VERSION-*.whl >/dev/null 2>&1; then
  echo "[demo-data] downloading scikit-image==$SKIMAGE_VERSION from PyPI for its sample images" >&2
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version 3.11 --platform manylinux_2_28_x86_64 --implementation cp \
    -d "$cache/wheels" "scikit-image==$SKIMAGE_VERSION" >&2
fi
python3 - "$cache"/wheels/scikit_image-$SKIMAGE_VERSION-*.whl "$out" <<'PY'
import sys, zipfile, os
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for name in ("ihc.png",):
        data = z.read("skimage/data/" + name)
        tmp = os.path.join(out, "." + name + ".part")
        open(tmp, "wb").write(data)
        os.replace(tmp, os.path.join(out, name))
PY
