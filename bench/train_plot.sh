#!/usr/bin/env bash
# The training plot of the README (docs/images/train-minutes.png): success and error against
# training minutes, drawn from the committed results of bench/train_minutes.sh (the recipe
# trained longer) and bench/train_ablation.sh (one change at a time). Rerun those two first
# to measure anew:
#   bench/train_minutes.sh 50 100 200 > bench/train-minutes-result.txt
#   bench/train_ablation.sh 50 > bench/train-ablation-result.txt
# Usage: bench/train_plot.sh [OUT_PNG]
source "$(dirname "$0")/common.sh"
bench_venv "matplotlib" matplotlib
out=${1:-docs/images/train-minutes.png}
$venv/bin/python bench/plot_training.py bench/train-minutes-result.txt bench/train-ablation-result.txt "$out"
echo "wrote $out"
