#!/usr/bin/env bash
# A/B of two builds of one bench_registration mode on sift_vs_opencv.sh's 1 MP pair:
#   amd-alone  α-AMD rigid, 3 starts, to full resolution (the speed issue's "α-AMD rigid, 1 MP"
#              row), best of 3 per run
#   sift       SIFT detect+describe, 4000 keypoints, best of 5 per run (RAYON_NUM_THREADS=1
#              in the environment for the 1-thread row)
#   mi         MI rigid registration of the two images (no model), one run per round
# Runs interleaved (old, new, old, new, …) so that a slow minute of a shared machine hits
# both. Prints the median and the least of the rounds, old against new, and whether both
# builds found the same result in every run (the matrix; for SIFT a digest of all keypoints
# and descriptors, bit for bit). Neither build is made here: build bench_registration at each
# commit (cargo build --release --example bench_registration) and copy it aside first.
# Usage: bench/ab_registration.sh MODE OLD_BENCH NEW_BENCH [ROUNDS]   (default: 5 rounds)
mode=$1 old=$(realpath "$2") new=$(realpath "$3")
rounds=${4:-5}
source "$(dirname "$0")/common.sh"
case $mode in
  amd-alone) same_key=matrix inputs=("$work/fixed.png" "$work/moving.png") ;;
  sift) same_key=digest inputs=("$work/fixed.png" 4000) ;;
  mi) same_key=matrix inputs=("$work/fixed.png" "$work/moving.png") ;;
  *) echo "MODE is amd-alone, sift or mi, not '$mode'" >&2; exit 2 ;;
esac
build_bench
unmix_demo
upsampled_pair
echo "A/B, bench_registration $mode, 1 MP, $rounds rounds interleaved, $(nproc) cores, RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-all}"
echo "old: $old"
echo "new: $new"
for r in $(seq "$rounds"); do
  for side in old new; do
    ${!side} "$mode" "${inputs[@]}" > "$work/$side-$r.txt"
  done
done
python3 - "$work" "$rounds" "$same_key" <<'PY'
import statistics, sys
work, rounds, key = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def runs(side):
    out = []
    for r in range(1, rounds + 1):
        lines = dict(l.split(" ", 1) for l in open(f"{work}/{side}-{r}.txt").read().splitlines() if " " in l)
        out.append((float(lines["seconds"]), lines[key]))
    return out
old, new = runs("old"), runs("new")
for name, o, n in [("median", statistics.median(s for s, _ in old), statistics.median(s for s, _ in new)), ("least", min(s for s, _ in old), min(s for s, _ in new))]:
    print(f"{name:8s} old {o:.3f} s  new {n:.3f} s  new/old {n / o:.2f}")
print("old runs:", " ".join(f"{s:.3f}" for s, _ in old))
print("new runs:", " ".join(f"{s:.3f}" for s, _ in new))
same = len({m for _, m in old + new}) == 1
print(f"same {key} in every run:", "yes" if same else "NO")
PY
