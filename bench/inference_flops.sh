#!/usr/bin/env bash
# Inference against the machine's own peak: for the small (shipped) and the paper network,
# seconds per megapixel (whole image and our default bounded-memory tiling), the achieved
# GFLOP/s (the convolutions' arithmetic, NetConfig::flops_per_pixel, over the measured time)
# and that as a share of libtorch's float GEMM on the same threads, measured in the same run.
# The tiled rate counts the image's pixels only: the margins it recomputes are its waste.
# Usage: bench/inference_flops.sh [SIZE]   (default 1024)
source "$(dirname "$0")/common.sh"
build_bench bench_model
size=${1:-1024}
echo "CoMIR inference, ${size}² image, CPU, $(nproc) threads (GEMM peak: libtorch float mm 2048², same run)"
printf "%-7s %12s %12s %14s %14s %10s %10s\n" net "kFLOP/px" "whole s/MP" "whole GFLOP/s" "tiled GFLOP/s" "whole/peak" "tiled/peak"
for net in small paper; do
  target/release/examples/bench_model "$work" "$size" 0 "$net" > "$work/$net.txt"
  grep "^#" "$work/$net.txt" || true
  python3 - "$work/$net.txt" "$size" "$net" <<'PY'
import sys
v = {k: float(x) for k, x in (l.split() for l in open(sys.argv[1]) if l.strip() and not l.startswith('#'))}
size, net = int(sys.argv[2]), sys.argv[3]
pixels = size * size
gflop = v["flops_per_pixel"] * pixels / 1e9
whole, tiled, peak = gflop / v["infer_whole_seconds"], gflop / v["infer_tiled_seconds"], v["gemm_gflops"]
print(f"{net:7} {v['flops_per_pixel'] / 1e3:12.1f} {v['infer_whole_seconds'] / (pixels / 1e6):12.2f} {whole:14.1f} {tiled:14.1f} {100 * whole / peak:9.0f}% {100 * tiled / peak:9.0f}%   (peak {peak:.1f} GFLOP/s)")
PY
done
