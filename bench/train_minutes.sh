#!/usr/bin/env bash
# Accuracy per training minute: the shipped model's recipe (small network, `make model`'s
# flags, seed 1) trained in chunks (`--resume`), and after each chunk the `make eval` protocol
# on the unseen right half of the demo pair. Prints, per total step count: the training
# minutes measured in this run, and `auto`'s and CoMIR+MI's success per level (%) with the
# median of auto's per-level median errors. What it answers: how long must a user train before `auto` is as good as with
# the shipped 1500-step (≈45 min) model. A last row trains as a user would: `comir train` with
# its defaults (percentile preprocessing, at most 1000 steps, stopping once two checkpoints in a
# row register every test crop), on the same half.
# Usage: bench/train_minutes.sh [TOTAL_STEPS...]   (default: 100 200 400)
source "$(dirname "$0")/common.sh"
build_bench
unmix_demo
totals=("$@"); [[ ${#totals[@]} -gt 0 ]] || totals=(100 200 400)
model=$work/model.safetensors
done_steps=0
minutes=0
echo "small network, make model's recipe, chunks resumed; eval: 192² patches of the right half, 10 per level, seed 0; $(nproc) cores"
printf "%6s %8s  %-26s %-26s %10s\n" "steps" "minutes" "auto success L1..L5" "CoMIR+MI success L1..L5" "auto err"
for total in "${totals[@]}"; do
  chunk=$((total - done_steps))
  resume=()
  [[ $done_steps -gt 0 ]] && resume=(--resume "$model")
  t0=$(date +%s.%N)
  $comir train --a "$work/hematoxylin.tif" --b "$work/dab.tif" --name-a hematoxylin --name-b DAB \
    --preprocess-a percentile --preprocess-b percentile --region 0,0,256,512 --steps "$chunk" \
    --seed $((1 + done_steps)) --checkpoint-every 0 "${resume[@]}" --out "$model.next" >/dev/null 2>&1
  mv "$model.next" "$model"
  minutes=$(echo "$minutes + ($(date +%s.%N) - $t0) / 60" | bc -l)
  done_steps=$total
  eval_unseen_half "$model" "$work/eval-$total"
  printf "%6d %8.1f  %-26s %-26s %10s\n" "$total" "$minutes" "$auto_rates" "$mi_rates" "$auto_err"
done
t0=$(date +%s.%N)
$comir train --a "$work/hematoxylin.tif" --b "$work/dab.tif" --name-a hematoxylin --name-b DAB \
  --region 0,0,256,512 --seed 1 --out "$work/defaults.safetensors" 2> "$work/defaults.log" >/dev/null
minutes=$(echo "($(date +%s.%N) - $t0) / 60" | bc -l)
steps=$(grep -o 'after [0-9]* steps (' "$work/defaults.log" | grep -o '[0-9]*' | head -1)
eval_unseen_half "$work/defaults.safetensors" "$work/eval-defaults"
printf "%6s %8.1f  %-26s %-26s %10s   (comir train with its defaults: stopped after %s steps)\n" "$steps" "$minutes" \
  "$auto_rates" "$mi_rates" "$auto_err" "$steps"
grep "the CoMIRs registers\|stopped before" "$work/defaults.log" | sed 's/^/  /'
echo "shipped model (1500 steps, ≈45 min): see bench/eval-ihc-small-1500.txt"
