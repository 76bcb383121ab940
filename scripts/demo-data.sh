#!/usr/bin/env bash
# Fetch the demo/test images from a package registry at set-up time (nothing is committed):
# scikit-image's bundled ihc.png (immunohistochemistry, 512×512 RGB) from its PyPI wheel, and
# two more of its images for the wider evaluation's synthetic pairs (make eval): cell.png
# (550×660 grey, a cell in saline) and astronaut.png (512×512 RGB); and, for pretraining on
# synthetic pairs (scripts/pretrain.sh), ten others that no evaluation uses.
# Writes them to .deps/demo/ and reuses the per-user cache (COMIR_CACHE).
set -euo pipefail
SKIMAGE_VERSION=0.26.0
SKIMAGE_SHA256=74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${COMIR_CACHE:-$HOME/.cache/comir}
out="$root/.deps/demo"
images=(ihc.png cell.png astronaut.png
  camera.png coins.png moon.png page.png text.png brick.png grass.png gravel.png chelsea.png
  coffee.png)
missing=0
for f in "${images[@]}"; do [[ -f "$out/$f" ]] || missing=1; done
[[ $missing == 0 ]] && exit 0
mkdir -p "$out"
source "$root/scripts/wheels.sh"
WHEEL_WAYS_OUT="copy scikit-image's skimage/data/{${images[*]}} (version $SKIMAGE_VERSION) to $out/ by hand"
wheel=$(fetch_wheel "$cache/wheels" scikit-image "$SKIMAGE_VERSION" "$SKIMAGE_SHA256" \
  manylinux_2_24_x86_64 manylinux_2_28_x86_64)
python3 - "$wheel" "$out" "${images[@]}" <<'PY'
import sys, zipfile, os
wheel, out, names = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(wheel) as z:
    for name in names:
        data = z.read("skimage/data/" + name)
        tmp = os.path.join(out, "." + name + ".part")
        open(tmp, "wb").write(data)
        os.replace(tmp, os.path.join(out, name))
PY
