#!/usr/bin/env bash
# Regenerate docs/images/demo-comirs.png after `make demo`: the two "modalities" of the demo and
# their CoMIRs side by side (needs ImageMagick's convert for the montage).
set -euo pipefail
cd "$(dirname "$0")/.."
out=demo-out; tmp=$(mktemp -d)
echo '{"format":"comir-transform","version":1,"kind":"translation","direction":"fixed_to_moving","matrix":[[1,0,0],[0,1,0]]}' > "$tmp/id.json"
png() { target/bin/comir apply --transform "$tmp/id.json" --input "$1" --output "$2" 2>/dev/null; }
png $out/stains/hematoxylin.tif "$tmp/a.png"
png $out/dab-moved.tif "$tmp/b.png"
png $out/registration/comir-fixed.tif "$tmp/c.png"
png $out/registration/comir-moving.tif "$tmp/d.png"
convert "$tmp/a.png" "$tmp/b.png" "$tmp/c.png" "$tmp/d.png" +append -resize 50% docs/images/demo-comirs.png
convert $out/registration/overlay.png -resize 50% docs/images/demo-overlay.png
echo "wrote docs/images/demo-comirs.png and demo-overlay.png"
