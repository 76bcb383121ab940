#!/usr/bin/env bash
# Our CoMIR network (Rust, tch) against the same network written in PyTorch and run from
# Python, same machine, same weights, same input, one run: paper configuration, CPU.
#   - inference of a SIZE² image (default 1024²): whole image both ways, outputs compared;
#     plus our default tiled `represent` (bounded memory) for its cost;
#   - training steps/s, batch 8 of 128² patches, C4 equivariance, InfoNCE, SGD.
# Usage: bench/pytorch_peer.sh [SIZE] [STEPS]
# PyTorch 2.13.0 (the version our libtorch is) comes from PyPI into a cached virtualenv; its
# CUDA dependencies are installed too (PyPI's Linux wheel needs them to import) but unused.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
size=${1:-1024}
steps=${2:-4}
venv=${COMIR_CACHE:-$HOME/.cache/comir}/pytorch-2.13.0-venv
if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c "import torch, numpy" 2>/dev/null; then
  echo "[bench] installing torch==2.13.0 and numpy into $venv (several GB with the CUDA wheels)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "torch==2.13.0" numpy >&2
fi
scripts/setup.sh >/dev/null
cargo build -q --release --example bench_model
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
threads=$(nproc)
echo "paper-configuration FC-DenseNet, ${size}² inference, batch 8 × 128² training, CPU, $threads threads"
target/release/examples/bench_model "$work" "$size" "$steps" > "$work/ours.txt"
"$venv/bin/python" bench/pytorch_peer.py "$work" "$size" "$steps" > "$work/peer.txt"
python3 - "$work/ours.txt" "$work/peer.txt" "$size" <<'PY'
import sys
read = lambda p: {k: float(v) for k, v in (l.split() for l in open(p) if l.strip() and not l.startswith('#'))}
ours, peer, size = read(sys.argv[1]), read(sys.argv[2]), int(sys.argv[3])
mp = size * size / 1e6
print(f"{'':34} {'ours (Rust)':>12} {'PyTorch':>12} {'speed-up':>9}")
print(f"{'inference, s per megapixel (whole)':34} {ours['infer_whole_seconds'] / mp:12.2f} {peer['infer_whole_seconds'] / mp:12.2f} {peer['infer_whole_seconds'] / ours['infer_whole_seconds']:8.2f}x")
print(f"{'inference, s per megapixel (tiled)':34} {ours['infer_tiled_seconds'] / mp:12.2f} {'':>12} {peer['infer_whole_seconds'] / ours['infer_tiled_seconds']:8.2f}x")
print(f"{'training, steps per second':34} {ours['train_steps_per_second']:12.4f} {peer['train_steps_per_second']:12.4f} {ours['train_steps_per_second'] / peer['train_steps_per_second']:8.2f}x")
print(f"largest |difference| of the whole-image outputs: {peer['max_abs_difference']:.2e} (outputs up to {peer['output_range']:.2f})")
PY
