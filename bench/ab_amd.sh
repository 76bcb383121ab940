#!/usr/bin/env bash
# A/B of two builds of α-AMD alone (rigid, 3 starts, to full resolution: the issue's "α-AMD
# rigid, 1 MP" row) on sift_vs_opencv.sh's 1 MP pair, interleaved (old, new, old, new, …) so
# that a slow minute of a shared machine hits both; each run is bench_registration's best of
# 3. Prints the median and the least of the rounds, old against new, and whether both found
# the same matrix in every run. Neither build is made here: build bench_registration at each
# commit (cargo build --release --example bench_registration) and copy it aside first.
# Usage: bench/ab_amd.sh OLD_BENCH NEW_BENCH [ROUNDS]   (default: 5 rounds)
old=$(realpath "$1") new=$(realpath "$2")
rounds=${3:-5}
source "$(dirname "$0")/common.sh"
build_bench
unmix_demo
upsampled_pair
echo "A/B, α-AMD alone (bench_registration amd-alone), 1 MP, $rounds rounds interleaved, $(nproc) cores"
echo "old: $old"
echo "new: $new"
for r in $(seq "$rounds"); do
  for side in old new; do
    ${!side} amd-alone "$work/fixed.png" "$work/moving.png" > "$work/$side-$r.txt"
  done
done
python3 - "$work" "$rounds" <<'PY'
import statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
def runs(side):
    out = []
    for r in range(1, rounds + 1):
        lines = dict(l.split(" ", 1) for l in open(f"{work}/{side}-{r}.txt").read().splitlines() if " " in l)
        out.append((float(lines["seconds"]), lines["matrix"]))
    return out
old, new = runs("old"), runs("new")
for name, o, n in [("median", statistics.median(s for s, _ in old), statistics.median(s for s, _ in new)), ("least", min(s for s, _ in old), min(s for s, _ in new))]:
    print(f"{name:8s} old {o:.3f} s  new {n:.3f} s  new/old {n / o:.2f}")
print("old runs:", " ".join(f"{s:.3f}" for s, _ in old))
print("new runs:", " ".join(f"{s:.3f}" for s, _ in new))
same = len({m for _, m in old + new}) == 1
print("same matrix in every run:", "yes" if same else "NO")
PY
