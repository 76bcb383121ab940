#!/usr/bin/env bash
# Peak memory (RSS) of `comir register` by MI (no model) for large pairs, next to the
# library's up-front estimate (src/memory.rs) that refuses registrations which would not fit.
# Pairs over the working budget (768 MiB) are registered on k × k binned copies; the estimate
# is then the inputs as 32-bit (4 bytes per pixel) plus the working copies of the binned pair.
# The pair: the demo's hematoxylin and DAB stains scaled up to N×N (DAB turned by 15°).
# Usage: bench/register-memory.sh [SIZES...]   (default: 2000 4000 8000 20000)
source "$(dirname "$0")/common.sh"
build_bench
unmix_demo
$comir apply --transform demo/transform.json --input "$work/dab.tif" --output "$work/dab-moved.tif" 2>/dev/null
sizes=("$@"); [[ ${#sizes[@]} -gt 0 ]] || sizes=(2000 4000 8000 20000)
printf "%-12s %16s %14s %8s %18s %10s\n" "pair" "peak RSS (MiB)" "bytes/pixel" "binning" "estimate (MiB)" "seconds"
for n in "${sizes[@]}"; do
  s=$(awk -v n="$n" 'BEGIN { print 511 / (n - 1) }')
  echo "{\"format\":\"comir-transform\",\"version\":1,\"kind\":\"similarity\",\"direction\":\"fixed_to_moving\",\"matrix\":[[$s,0,0],[0,$s,0]]}" > "$work/scale.json"
  $comir apply --transform "$work/scale.json" --input "$work/hematoxylin.tif" --output "$work/f.tif" --size ${n}x${n} 2>/dev/null
  $comir apply --transform "$work/scale.json" --input "$work/dab-moved.tif" --output "$work/m.tif" --size ${n}x${n} 2>/dev/null
  python3 - "$comir" "$work" "$n" <<'PY'
import resource, subprocess, sys, time
comir, work, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
t = time.time()
subprocess.run([comir, "register", "--small-rotation", "--fixed", f"{work}/f.tif", "--moving", f"{work}/m.tif",
                "--out", f"{work}/r{n}"], check=True, stderr=subprocess.DEVNULL)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
import json
k = json.load(open(f"{work}/r{n}/report.json"))["binning"]
# src/memory.rs: BYTES_PER_PAIR_PIXEL × (fixed + moving pixels) of the pair registered
estimate = 2 * n * n * 24 / k**2 / 2**20 + (2 * n * n * 4 / 2**20 if k > 1 else 0)
print(f"{n}x{n:<7} {peak:16.0f} {peak * 2**20 / (n * n):14.1f} {k:8d} {estimate:18.0f} {time.time() - t:10.1f}")
PY
  rm -rf "$work/f.tif" "$work/m.tif" "$work/r$n"
done
