#!/usr/bin/env bash
# The wider evaluation of `make eval` (issue #13, point 5): synthetic multimodal pairs made by
# `comir synth` from scikit-image images that no shipped model saw. For each pair a model is
# trained with `comir train`'s defaults (as a user would: the minutes are part of the result)
# on the left half, and `comir eval` runs the MultiRegEval protocol on the right half (192²
# patches, 10 per level, seed 0). Writes OUT/<pair>/ (model, training log, eval/) and
# OUT/summary.txt: training minutes and steps, then each method's success and median error
# per level. Usage: scripts/eval-synthetic.sh [OUT] (default demo-out/eval-synthetic).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
comir=target/release/comir
out=${1:-demo-out/eval-synthetic}
mkdir -p "$out"

# name  image  seed of the synthetic modality pair
pairs=(
  "cell .deps/demo/cell.png 1"
  "astronaut .deps/demo/astronaut.png 2"
)

summary="$out/summary.txt"
: > "$summary.part"
for p in "${pairs[@]}"; do
  read -r name image seed <<< "$p"
  dir="$out/$name"
  mkdir -p "$dir"
  # "wrote a.tif, b.tif (W×H) to DIR": the size for the two halves.
  read -r w h < <($comir synth --input "$image" --out-dir "$dir" --seed "$seed" 2>&1 | sed -n 's/.*(\([0-9]*\)×\([0-9]*\)).*/\1 \2/p')
  half=$((w / 2))
  echo "[eval] $name: ${w}×${h}, training on the left half (comir train defaults)"
  start=$SECONDS
  $comir train --a "$dir/a.tif" --b "$dir/b.tif" --name-a A --name-b B --region "0,0,$half,$h" \
    --seed 1 --out "$dir/model.safetensors" > "$dir/train.log" 2>&1
  minutes=$(awk -v s=$((SECONDS - start)) 'BEGIN { printf "%.1f", s / 60 }')
  steps=$(sed -n 's/.* after \([0-9]*\) steps (.*/\1/p' "$dir/train.log" | head -1)
  echo "[eval] $name: trained $steps steps in $minutes min; evaluating on the right half"
  $comir eval --model "$dir/model.safetensors" --fixed "$dir/a.tif" --moving "$dir/b.tif" \
    --region "$half,0,$((w - half)),$h" --patch 192 --per-level 10 --out "$dir/eval" > /dev/null 2>&1
  {
    echo "## $name (${w}×${h}, synthetic seed $seed): model trained $steps steps in $minutes min"
    cat "$dir/eval/summary.txt"
    echo
  } >> "$summary.part"
done
mv "$summary.part" "$summary"
cat "$summary"
