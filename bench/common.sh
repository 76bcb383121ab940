# Sourced by the bench scripts: the prelude they share. It moves to the repository root,
# provisions the project (scripts/setup.sh), and makes a temporary $work (kept when KEEP is
# set, to look at the inputs afterwards); $comir is the release CLI (the build without libtorch).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/setup.sh >/dev/null
comir=target/bin/comir
venv=.deps/bench-venv
work=$(mktemp -d)
[[ -n ${KEEP:-} ]] || trap 'rm -rf "$work"' EXIT

# build_bench [EXAMPLE...]: the CLI's two builds (scripts/build.sh: $comir has no libtorch,
# and hands training to comir-torch) and the named examples, release build.
build_bench() {
  scripts/build.sh -q
  local args=()
  for e in "$@"; do args+=(--example "$e"); done
  if [[ ${#args[@]} -gt 0 ]]; then cargo build -q --release "${args[@]}"; fi
}

# unmix_demo: the demo image's stains (hematoxylin.tif, eosin.tif, dab.tif) into $work.
unmix_demo() {
  $comir unmix --input .deps/demo/ihc.png --out-dir "$work" 2>/dev/null
}

# scale_image IN OUT N: IN (a 512² image) scaled to N×N by `comir apply`.
scale_image() {
  local s; s=$(awk -v n="$3" 'BEGIN { print 512 / n }')
  echo "{\"format\":\"comir-transform\",\"version\":1,\"kind\":\"similarity\",\"direction\":\"fixed_to_moving\",\"matrix\":[[$s,0,0],[0,$s,0]]}" > "$work/scale.json"
  $comir apply --transform "$work/scale.json" --input "$1" --output "$2" --size "$3x$3" 2>/dev/null
}

# upsampled_pair: the 1 MP feature benchmarks' pair in $work: the demo's hematoxylin scaled ×2
# to 1024² (fixed.png) and a copy turned 5° and shifted (60, −20) px (moving.png; rot.json).
# Needs unmix_demo first.
upsampled_pair() {
  echo '{"format":"comir-transform","version":1,"kind":"similarity","direction":"fixed_to_moving","matrix":[[0.5,0,0],[0,0.5,0]]}' > "$work/up.json"
  $comir apply --transform "$work/up.json" --input "$work/hematoxylin.tif" --output "$work/fixed.png" --size 1024x1024 2>/dev/null
  echo '{"format":"comir-transform","version":1,"kind":"rigid","direction":"fixed_to_moving","matrix":[[0.9962,-0.0872,60],[0.0872,0.9962,-20]]}' > "$work/rot.json"
  $comir apply --transform "$work/rot.json" --input "$work/fixed.png" --output "$work/moving.png" 2>/dev/null
}

# mosaic_pair SIZE: the registration benchmarks' pair in $work, SIZE being N (N×N) or WxH:
# the demo's hematoxylin (hematoxylin-SIZE.tif, fixed) and DAB stains tiled to that size with
# each tile turned or flipped differently (so structures keep the size the model was trained
# on, and the mosaic has no symmetry: a mirror tiling is its own 180° turn, which made every
# method's answer ambiguous), the DAB moved by a rigid transform (8° about the centre, shift
# 3% of the width and of the height; tSIZE.json) into moving-SIZE.tif. Needs unmix_demo first
# and the bench venv with itk and numpy.
mosaic_pair() {
  local n=$1
  $venv/bin/python - "$work" "$n" <<'PY'
import json, math, sys
import itk, numpy as np
work, size = sys.argv[1], sys.argv[2]
w, h = (int(v) for v in size.split("x")) if "x" in size else (int(size), int(size))
for name in ("hematoxylin", "dab"):
    a = itk.array_from_image(itk.imread(f"{work}/{name}.tif", itk.F))
    k = a.shape[0]
    reps = -(-max(w, h) // k)
    # One of the 8 turns/flips per tile, the same for both stains (they stay aligned).
    pattern = np.random.default_rng(7).permutation(np.arange(reps * reps) % 8).reshape(reps, reps)
    def tile(d):
        t = np.rot90(a, d % 4)
        return t.T if d >= 4 else t
    mosaic = np.block([[tile(pattern[i, j]) for j in range(reps)] for i in range(reps)])[:h, :w]
    itk.imwrite(itk.image_from_array(np.ascontiguousarray(mosaic, dtype=np.float32)), f"{work}/{name}-{size}.tif")
a, cx, cy = math.radians(8), (w - 1) / 2, (h - 1) / 2
co, si, tx, ty = math.cos(a), math.sin(a), 0.03 * w, 0.03 * h
m = [[co, -si, cx - co * cx + si * cy + tx], [si, co, cy - si * cx - co * cy - ty]]
json.dump({"format": "comir-transform", "version": 1, "kind": "rigid", "direction": "fixed_to_moving", "matrix": m}, open(f"{work}/t{size}.json", "w"))
PY
  $comir apply --transform "$work/t$n.json" --input "$work/dab-$n.tif" --output "$work/moving-$n.tif" 2>/dev/null
}

# bench_venv MODULES PACKAGE...: the peers' shared Python venv, with the PACKAGEs installed
# unless `import MODULES` already works (one venv serves several peers, so check each's own).
bench_venv() {
  local modules=$1
  shift
  [[ -x $venv/bin/python ]] || python3 -m venv $venv
  $venv/bin/python -c "import $modules" 2>/dev/null || $venv/bin/pip -q install "$@"
}

# eval_unseen_half MODEL OUT: the `make eval` protocol (192² patches of the demo pair's right
# half, which the training never saw, 10 per level, seed 0) for MODEL, into the folder OUT;
# then sets auto_rates and mi_rates (success per level of auto and CoMIR+MI, "90% 100% …") and
# auto_err (the median of auto's per-level median errors) from OUT/summary.txt.
eval_unseen_half() {
  $comir eval --model "$1" --fixed "$work/hematoxylin.tif" --moving "$work/dab.tif" \
    --region 256,0,256,512 --patch 192 --per-level 10 --out "$2" >/dev/null 2>&1
  eval_columns "$2/summary.txt"
}

eval_columns() {
  local rates='$1==m {printf "%s ", $3}'
  auto_rates=$(awk -v m=auto "$rates" "$1")
  mi_rates=$(awk -v m=CoMIR+MI "$rates" "$1")
  auto_err=$(awk '$1=="auto" {print $4}' "$1" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
}
