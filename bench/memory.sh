#!/usr/bin/env bash
# Peak memory (RSS) and time of computing a CoMIR with the shipped model for large images,
# next to the size of the image itself (the peer: the memory the float image alone needs).
# Usage: bench/memory.sh [SIZES...]   (default: 2000 5000; 10000 takes minutes on 2 cores)
source "$(dirname "$0")/common.sh"
build_bench
unmix_demo
sizes=("$@"); [[ ${#sizes[@]} -gt 0 ]] || sizes=(2000 5000)
printf "%-12s %14s %16s %8s %10s\n" "image" "image (MiB)" "peak RSS (MiB)" "ratio" "seconds"
for n in "${sizes[@]}"; do
  scale_image "$work/hematoxylin.tif" "$work/big.tif" "$n"
  python3 - "$comir" "$work" "$n" <<'PY'
import resource, subprocess, sys, time
comir, work, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
t = time.time()
subprocess.run([comir, "represent", "--model", "models/ihc-hdab-small.safetensors", "--modality", "hematoxylin",
                "--input", f"{work}/big.tif", "--output", f"{work}/comir.tif"], check=True, stderr=subprocess.DEVNULL)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
image = n * n * 4 / 2**20
print(f"{n}x{n:<7} {image:14.0f} {peak:16.0f} {peak / image:8.2f} {time.time() - t:10.1f}")
PY
  rm -f "$work/big.tif" "$work/comir.tif"
done
