#!/usr/bin/env bash
# A/B of two builds of the CLI, step by step: `comir register` (auto, the shipped model) by
# each on the same mosaic pairs (see mosaic_pair in common.sh), interleaved (old, new, old,
# new, …) so that a slow minute of a shared machine hits both. Prints each step of the
# profile (report.json's timings_seconds) as the median over the rounds, old against new, and
# whether the two found the same transform. Neither build is made here: build the old one
# from its commit and copy it aside first.
# Usage: bench/ab_steps.sh OLD_COMIR NEW_COMIR [ROUNDS] [SIZES...]   (default: 3 rounds; 512 1024;
# a size is N for N×N or WxH)
# METHOD=mi compares `--method mi` without a model instead.
old=$(realpath "$1") new=$(realpath "$2")
rounds=${3:-3}
shift 2; [[ $# -gt 0 ]] && shift
source "$(dirname "$0")/common.sh"
bench_venv "itk, numpy" itk-elastix numpy
method=${METHOD:-auto}
how=(--model models/ihc-hdab-small.safetensors)
[[ $method == auto ]] || how=(--method "$method")
comir=$new
unmix_demo
sizes=("$@"); [[ ${#sizes[@]} -gt 0 ]] || sizes=(512 1024)
echo "A/B, comir register ${how[*]}, $rounds rounds interleaved, $(nproc) cores"
echo "old: $old"
echo "new: $new"
for n in "${sizes[@]}"; do
  mosaic_pair "$n"
  for r in $(seq "$rounds"); do
    for side in old new; do
      start=$(date +%s.%N)
      ${!side} register "${how[@]}" --fixed "$work/hematoxylin-$n.tif" --moving "$work/moving-$n.tif" --out "$work/$side-$r" >/dev/null 2>&1
      echo "$(date +%s.%N) - $start" | bc > "$work/$side-$r/wall.txt"
    done
  done
  python3 - "$work" "$n" "$rounds" <<'PY'
import json, statistics, sys
work, n, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
runs = {s: [json.load(open(f"{work}/{s}-{r}/report.json")) for r in range(1, rounds + 1)] for s in ("old", "new")}
walls = {s: [float(open(f"{work}/{s}-{r}/wall.txt").read()) for r in range(1, rounds + 1)] for s in ("old", "new")}
steps = list(dict.fromkeys(k for s in ("old", "new") for run in runs[s] for k in run["timings_seconds"]))
print(f"{n if 'x' in n else f'{n}x{n}'}: median over {rounds} rounds (s)      old      new   new/old")
def row(name, old, new):
    if old and new:
        o, w = statistics.median(old), statistics.median(new)
        print(f"  {name:<34} {o:8.3f} {w:8.3f} {w / o if o > 0 else float('nan'):8.2f}")
    else:
        print(f"  {name:<34} {'—' if not old else statistics.median(old):>8} {'—' if not new else statistics.median(new):>8}   (step in one build only)")
for k in steps:
    row(k, [r["timings_seconds"][k] for r in runs["old"] if k in r["timings_seconds"]], [r["timings_seconds"][k] for r in runs["new"] if k in r["timings_seconds"]])
row("wall (whole command)", walls["old"], walls["new"])
matrices = {s: [json.dumps(r["matrix_fixed_to_moving_px"]) for r in runs[s]] for s in ("old", "new")}
same = len(set(matrices["old"] + matrices["new"])) == 1
print(f"  same transform in every run of both: {'yes' if same else 'NO'}")
if not same:
    a, b = json.loads(matrices["old"][0]), json.loads(matrices["new"][0])
    print(f"  largest matrix difference (first runs): {max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb)):.3g}")
PY
done
