#!/usr/bin/env bash
# Pretrain both networks on synthetic multimodal pairs (issue #13, goal 4): `comir synth` makes
# an aligned pair from each of ten scikit-image images that no evaluation uses (not ihc, cell
# or astronaut), with its own random non-monotonic intensity map, edge mix, blur and noise;
# every other pair is swapped so that both networks see both kinds of modality. One model is
# trained on all pairs together; `comir train --start OUT` fine-tunes it on a pair. Measured in
# bench/pretrain-start-result.txt: not better than random weights, so not the default.
# Usage: scripts/pretrain.sh OUT.safetensors [STEPS] (default 600). Reproducible: fixed seeds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
comir=target/bin/comir
out=${1:?usage: scripts/pretrain.sh OUT.safetensors [STEPS]}
steps=${2:-600}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
images=(camera coins moon page text brick grass gravel chelsea coffee)
a=() b=()
for k in "${!images[@]}"; do
  name=${images[$k]}
  $comir synth --input ".deps/demo/$name.png" --out-dir "$work/$name" --seed $((100 + k)) > /dev/null 2>&1
  if (( k % 2 == 0 )); then
    a+=("$work/$name/a.tif") b+=("$work/$name/b.tif")
  else
    a+=("$work/$name/b.tif") b+=("$work/$name/a.tif")
  fi
done
$comir train --a "${a[@]}" --b "${b[@]}" --name-a A --name-b B --steps "$steps" --all-steps \
  --checkpoint-every 100 --seed 1 --out "$out"
