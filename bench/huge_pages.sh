#!/usr/bin/env bash
# Transparent huge pages for the network's memory, measured (session 19: not adopted).
# libtorch backs its blocks of 2 MB and more with huge pages (madvise) when the environment has
# THP_MEM_ALLOC_ENABLE=1; a 1 MP pass faults in ~360 000 4 kB pages without. Both sides run the
# same binary, interleaved, same inputs: THP_MEM_ALLOC_ENABLE=0 (as the CLI and Fiji run) and
# =1. Jobs: `comir represent` of the demo's hematoxylin scaled to N×N, and `comir register`
# (auto, shipped model) of the demo pair scaled to 1024² with the DAB moved by
# demo/transform.json. Prints per job and side the best and median wall time, CPU time (user +
# system), page faults, and the ratio of the medians (> 1: huge pages faster); the outputs of
# both sides must be equal (checked). Result: bench/huge-pages-result.txt.
# Usage: bench/huge_pages.sh [RUNS [SIZES...]]   (default: 5 runs, 1024 2048)
source "$(dirname "$0")/common.sh"
build_bench
unmix_demo
runs=${1:-5}
shift || true
sizes=("$@"); [[ ${#sizes[@]} -gt 0 ]] || sizes=(1024 2048)
model=models/ihc-hdab-small.safetensors
echo "THP: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo unknown); $(nproc) cores; $runs runs per side, interleaved"
jobs=()
for n in "${sizes[@]}"; do
  scale_image "$work/hematoxylin.tif" "$work/h-$n.tif" "$n"
  jobs+=("represent-$n")
done
[[ -f $work/h-1024.tif ]] || scale_image "$work/hematoxylin.tif" "$work/h-1024.tif" 1024
scale_image "$work/dab.tif" "$work/d-1024.tif" 1024
# demo/transform.json is for 512² pixels: the same turn about the same point, shift doubled.
python3 - "$work" <<'PY'
import json, sys
t = json.load(open("demo/transform.json"))
t["matrix"] = [[r[0], r[1], 2 * r[2]] for r in t["matrix"]]
t.pop("fixed", None)
json.dump(t, open(f"{sys.argv[1]}/t-1024.json", "w"))
PY
$comir apply --transform "$work/t-1024.json" --input "$work/d-1024.tif" --output "$work/m-1024.tif" 2>/dev/null
jobs+=("register-1024")
run_job() {  # run_job JOB SIDE: one timed run; appends "wall cpu faults" to $work/JOB-SIDE.txt
  local job=$1 side=$2 thp
  thp=$([[ $side == huge ]] && echo 1 || echo 0)
  case $job in
    represent-*) cmd=(represent --model $model --modality hematoxylin --input "$work/h-${job#represent-}.tif" --output "$work/out-$side.tif") ;;
    register-*) cmd=(register --model $model --fixed "$work/h-1024.tif" --moving "$work/m-1024.tif" --out "$work/r-$side") ;;
  esac
  THP_MEM_ALLOC_ENABLE=$thp /usr/bin/time -f "%e %U %S %R" -o "$work/time.txt" $comir "${cmd[@]}" >/dev/null 2>&1
  awk '{ print $1, $2 + $3, $4 }' "$work/time.txt" >> "$work/$job-$side.txt"
}
printf "%-15s %-6s %9s %10s %9s %10s %12s\n" "job" "pages" "best (s)" "median (s)" "CPU (s)" "faults" "median ratio"
for job in "${jobs[@]}"; do
  for ((i = 0; i < runs; i++)); do
    run_job "$job" small
    run_job "$job" huge
  done
  case $job in
    represent-*) cmp -s "$work/out-small.tif" "$work/out-huge.tif" || { echo "$job: outputs differ" >&2; exit 1; } ;;
    register-*) cmp -s "$work/r-small/transform.json" "$work/r-huge/transform.json" || { echo "$job: transforms differ" >&2; exit 1; } ;;
  esac
  python3 - "$work" "$job" <<'PY'
import statistics as st, sys
work, job = sys.argv[1], sys.argv[2]
med = {}
for side, label in (("small", "4 kB"), ("huge", "huge")):
    rows = [list(map(float, l.split())) for l in open(f"{work}/{job}-{side}.txt")]
    wall, cpu, faults = zip(*rows)
    med[side] = st.median(wall)
    ratio = f"{med['small'] / med['huge']:.2f}x" if side == "huge" else ""
    print(f"{job:<15} {label:<6} {min(wall):9.2f} {med[side]:10.2f} {st.median(cpu):9.2f} {st.median(faults):10.0f} {ratio:>12}")
PY
done
