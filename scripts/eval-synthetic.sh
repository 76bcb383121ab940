#!/usr/bin/env bash
# The wider evaluation of `make eval` (issue #13, point 5): models trained here with
# `comir train`'s defaults (as a user would: the minutes are part of the result) on the left
# half of three pairs, evaluated by `comir eval` (MultiRegEval protocol, 192² patches, 10 per
# level, seed 0) on the right half:
#   - demo: the demo's hematoxylin/DAB stains (the shipped model's pair, trained afresh here);
#   - cell, astronaut: synthetic multimodal pairs made by `comir synth` from scikit-image
#     images that no shipped model saw (nor scripts/pretrain.sh's pairs).
# Writes OUT/<pair>/ (model, training log, eval/) and OUT/summary.txt: training minutes and
# steps, then each method's success and median error per level.
# Usage: scripts/eval-synthetic.sh [OUT] (default demo-out/eval-synthetic). TRAIN_ARGS adds
# options to every `comir train` (e.g. TRAIN_ARGS="--start FILE" to compare a start from a
# pretrained model, as in bench/pretrain-start-result.txt). REUSE_MODELS=1 evaluates the models
# an earlier run left in OUT instead of training (a before/after of a registration change on
# the very same models; the minutes shown are then the earlier run's).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# COMIR: another build of the CLI (e.g. a copy, so that a rebuild during the run cannot mix two).
comir=${COMIR:-target/bin/comir}
out=${1:-demo-out/eval-synthetic}
read -r -a extra <<< "${TRAIN_ARGS:-}"
mkdir -p "$out"

# name  image  seed of the synthetic modality pair ("-": the demo's two stains)
pairs=(
  "demo .deps/demo/ihc.png -"
  "cell .deps/demo/cell.png 1"
  "astronaut .deps/demo/astronaut.png 2"
)

summary="$out/summary.txt"
: > "$summary.part"
for p in "${pairs[@]}"; do
  read -r name image seed <<< "$p"
  dir="$out/$name"
  mkdir -p "$dir"
  if [[ $seed == - ]]; then
    $comir unmix --input "$image" --out-dir "$dir/stains" > /dev/null 2>&1
    a=$dir/stains/hematoxylin.tif b=$dir/stains/dab.tif what="the demo's hematoxylin and DAB"
  else
    $comir synth --input "$image" --out-dir "$dir" --seed "$seed" > /dev/null 2>&1
    a=$dir/a.tif b=$dir/b.tif what="synthetic seed $seed"
  fi
  # The size for the two halves: from the PNG's header (both modalities keep the image's size).
  read -r w h < <(python3 -c 'import struct, sys; print(*struct.unpack(">II", open(sys.argv[1], "rb").read()[16:24]))' "$image")
  half=$((w / 2))
  echo "[eval] $name: ${w}×${h}, training on the left half (comir train defaults ${extra[*]})"
  if [[ ${REUSE_MODELS:-} == 1 && -f $dir/model.safetensors && -f $dir/train.log ]]; then
    minutes=$(cat "$dir/train.minutes" 2>/dev/null || echo "?")
  else
    start=$SECONDS
    $comir train --a "$a" --b "$b" --name-a A --name-b B --region "0,0,$half,$h" \
      --seed 1 "${extra[@]}" --out "$dir/model.safetensors" > "$dir/train.log" 2>&1
    minutes=$(awk -v s=$((SECONDS - start)) 'BEGIN { printf "%.1f", s / 60 }')
    echo "$minutes" > "$dir/train.minutes"
  fi
  steps=$(sed -n 's/.* after \([0-9]*\) steps (.*/\1/p' "$dir/train.log" | head -1)
  echo "[eval] $name: trained $steps steps in $minutes min; evaluating on the right half"
  $comir eval --model "$dir/model.safetensors" --fixed "$a" --moving "$b" \
    --region "$half,0,$((w - half)),$h" --patch 192 --per-level 10 --out "$dir/eval" > /dev/null 2>&1
  {
    echo "## $name (${w}×${h}, $what): model trained $steps steps in $minutes min"
    cat "$dir/eval/summary.txt"
    echo
  } >> "$summary.part"
done
mv "$summary.part" "$summary"
cat "$summary"
