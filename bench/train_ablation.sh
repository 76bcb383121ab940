#!/usr/bin/env bash
# What buys accuracy per training minute: one change at a time against the shipped model's
# recipe (small network, batch 8 of 128² patches, 1 output channel, MSE critic, τ 0.5, C4
# equivariance and augmentation on, SGD, percentile preprocessing, left half of the demo
# pair, seed 1), each trained for the same number of steps (all of them: no early stop, no
# checks), then the `make eval` protocol on the unseen right half. Prints per variant the
# training minutes measured in this run, `auto`'s and CoMIR+MI's success per level (%) and
# the median of auto's per-level median errors.
# Usage: bench/train_ablation.sh [STEPS [VARIANT...]]   (default: 100 steps, every variant)
source "$(dirname "$0")/common.sh"
build_bench
unmix_demo
steps=${1:-100}
shift || true
declare -A flags=(
  [baseline]=""
  [batch-4]="--batch 4"
  [batch-16]="--batch 16"
  [patch-96]="--patch 96"
  [channels-3]="--channels 3"
  [critic-cosine]="--critic cosine"
  [tau-0.1]="--tau 0.1"
  [no-equivariance]="--no-equivariance"
  [no-augmentation]="--no-augmentation"
  [paper-net]="--size paper"
)
order=(baseline batch-4 batch-16 patch-96 channels-3 critic-cosine tau-0.1 no-equivariance no-augmentation paper-net)
[[ $# -gt 0 ]] && order=("$@")
echo "one change at a time vs make model's recipe, $steps steps each (all), seed 1; eval: 192² patches of the right half, 10 per level, seed 0; $(nproc) cores"
printf "%-16s %8s  %-26s %-26s %10s\n" "variant" "minutes" "auto success L1..L5" "CoMIR+MI success L1..L5" "auto err"
for v in "${order[@]}"; do
  [[ -v flags[$v] ]] || { echo "unknown variant $v (known: ${order[*]})" >&2; exit 1; }
  model=$work/$v.safetensors
  t0=$(date +%s.%N)
  # shellcheck disable=SC2086  # the variant's flags are words
  $comir train --a "$work/hematoxylin.tif" --b "$work/dab.tif" --name-a hematoxylin --name-b DAB \
    --preprocess-a percentile --preprocess-b percentile --region 0,0,256,512 --steps "$steps" --all-steps \
    --seed 1 --checkpoint-every 0 ${flags[$v]} --out "$model" >/dev/null 2>&1
  minutes=$(echo "($(date +%s.%N) - $t0) / 60" | bc -l)
  eval_unseen_half "$model" "$work/eval-$v"
  printf "%-16s %8.1f  %-26s %-26s %10s\n" "$v" "$minutes" "$auto_rates" "$mi_rates" "$auto_err"
done
