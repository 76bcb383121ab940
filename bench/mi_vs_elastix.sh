#!/usr/bin/env bash
# MI registration without a model: ours (Rust, Mattes-style MI with a pyramid) against elastix
# (PyPI itk-elastix, default rigid map, Mattes MI), same pairs, one run. The pairs: the demo
# image's hematoxylin channel (fixed) and its DAB channel (a different-looking "modality")
# moved by N random rigid transforms (rotation up to ±10°, translation up to ±5% of the size).
# Success = mean corner error ≤ 2% of the width (MultiRegEval's criterion).
# Usage: bench/mi_vs_elastix.sh [N]
n=${1:-10}
source "$(dirname "$0")/common.sh"
bench_venv itk itk-elastix numpy
build_bench bench_registration
bench=target/release/examples/bench_registration
unmix_demo
python3 - "$work" "$n" <<'PY'
import json, math, random, sys
work, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(1)
size = 512
for i in range(n):
    a = math.radians(rnd.uniform(-10, 10)); tx, ty = rnd.uniform(-0.05, 0.05) * size, rnd.uniform(-0.05, 0.05) * size
    c, s, cx = math.cos(a), math.sin(a), (size - 1) / 2
    m = [[c, -s, cx - c * cx + s * cx + tx], [s, c, cx - s * cx - c * cx + ty]]
    json.dump({"format": "comir-transform", "version": 1, "kind": "rigid", "direction": "fixed_to_moving", "matrix": m}, open(f"{work}/t{i}.json", "w"))
PY
val() { sed -n "s/^$1 //p"; }
for ((i = 0; i < n; i++)); do
  $comir apply --transform "$work/t$i.json" --input "$work/dab.tif" --output "$work/moving$i.tif" 2>/dev/null
  ours=$($bench mi "$work/hematoxylin.tif" "$work/moving$i.tif")
  peer=$($venv/bin/python bench/elastix_peer.py "$(nproc)" "$work/hematoxylin.tif" "$work/moving$i.tif")
  echo "$i ours $(echo "$ours" | val seconds) $(echo "$ours" | val matrix)" >> "$work/results.txt"
  echo "$i elastix $(echo "$peer" | val seconds) $(echo "$peer" | val matrix)" >> "$work/results.txt"
done
python3 - "$work" "$n" <<'PY'
import json, statistics, sys
work, n = sys.argv[1], int(sys.argv[2])
w = h = 512
def corner_error(a, b):
    err = 0
    for x, y in ((0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1)):
        pa = (a[0] * x + a[1] * y + a[2], a[3] * x + a[4] * y + a[5])
        pb = (b[0] * x + b[1] * y + b[2], b[3] * x + b[4] * y + b[5])
        err += ((pa[0] - pb[0]) ** 2 + (pa[1] - pb[1]) ** 2) ** 0.5
    return err / 4
rows = {"ours": [], "elastix": []}
for line in open(f"{work}/results.txt"):
    i, who, sec, *m = line.split()
    # `comir apply` made moving(p) = DAB(t(p)), so the registration should find t's inverse.
    (a, b, tx), (c, d, ty) = json.load(open(f"{work}/t{i}.json"))["matrix"]
    det = a * d - b * c
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    truth = [ia, ib, -(ia * tx + ib * ty), ic, id_, -(ic * tx + id_ * ty)]
    rows[who].append((float(sec), corner_error([float(v) for v in m], truth)))
print(f"MI rigid, {n} pairs (IHC hematoxylin vs moved DAB, 512², rotation ±10°, shift ±5%), success = corner error ≤ {0.02 * w:.1f} px")
print(f"{'':10} {'success':>8} {'median error (px)':>18} {'median time (s)':>16}")
for who, r in rows.items():
    ok = sum(e <= 0.02 * w for _, e in r)
    print(f"{who:10} {ok:>5}/{len(r):<2} {statistics.median(e for _, e in r):18.2f} {statistics.median(s for s, _ in r):16.2f}")
t = [statistics.median(s for s, _ in rows[k]) for k in ("ours", "elastix")]
print(f"time ratio ours / elastix: {t[0] / t[1]:.2f}")
PY
