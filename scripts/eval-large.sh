#!/usr/bin/env bash
# The large-image part of `make eval`: the MultiRegEval protocol on 1024² patches (1 MP), where
# the pipeline runs steps that the 192² patches of the other parts never reach (α-AMD's polish
# on two pyramid levels, MI's coarser levels, SIFT on a million pixels).
#
# The pair: the demo's hematoxylin and DAB stains, right half only (the shipped model was
# trained on the left half), cut into 256² squares and tiled to 2048² with each tile turned or
# flipped at random, the same for both stains (so structures keep the size the model was
# trained on, and the mosaic has no symmetry that would make a pose ambiguous). The seams are
# edges real tissue does not have: this measures the pipeline at 1 MP, not a new modality.
# `comir eval` (shipped model, seed 0, 4 transforms per level: 20 cases, ~4 min) then writes
# OUT/eval/.
# PATCH=640 evaluates 640² patches instead (the search's coarse copies 5 px a pixel, as for the
# speed issue's 546×273 pair; the 192² and 1 MP parts have 2 and 8): the steps' choices that
# depend on that factor (which α-AMD levels polish the NCC pose) are measured there.
# Usage: scripts/eval-large.sh [OUT] (default demo-out/eval-large); COMIR: another build;
# PATCH, PER_LEVEL: the patch side (1024) and the transforms per level (4).
# The benchmarks' prelude: repository root, set-up, and bench_venv.
source "$(dirname "$0")/../bench/common.sh"
comir=${COMIR:-$comir}
out=${1:-demo-out/eval-large}
per_level=${PER_LEVEL:-4}
patch=${PATCH:-1024}
model=models/ihc-hdab-small.safetensors
mkdir -p "$out"

# numpy and itk (float TIFF in and out) in the bench venv, as the benchmarks use them.
bench_venv "itk, numpy" itk-elastix numpy

$comir unmix --input .deps/demo/ihc.png --out-dir "$out/stains" > /dev/null 2>&1
$venv/bin/python - "$out" <<'PY'
import sys
import itk, numpy as np
out = sys.argv[1]
n, k = 2048, 256
rng = np.random.default_rng(11)
reps = n // k
# Per tile: which held-out square (top or bottom of the right half) and which of 8 turns/flips.
squares = rng.integers(0, 2, (reps, reps))
turns = rng.integers(0, 8, (reps, reps))
for name in ("hematoxylin", "dab"):
    a = itk.array_from_image(itk.imread(f"{out}/stains/{name}.tif", itk.F))
    assert a.shape == (512, 512), a.shape
    held_out = [a[0:k, 256:512], a[k:2 * k, 256:512]]
    def tile(i, j):
        t = np.rot90(held_out[squares[i, j]], turns[i, j] % 4)
        return t.T if turns[i, j] >= 4 else t
    mosaic = np.block([[tile(i, j) for j in range(reps)] for i in range(reps)])
    itk.imwrite(itk.image_from_array(np.ascontiguousarray(mosaic, dtype=np.float32)), f"{out}/{name}-mosaic.tif")
PY
$comir eval --model "$model" --fixed "$out/hematoxylin-mosaic.tif" --moving "$out/dab-mosaic.tif" \
  --patch "$patch" --per-level "$per_level" --out "$out/eval" > /dev/null 2>&1
cat "$out/eval/summary.txt"
