#!/usr/bin/env bash
# Start real ImageJ (a window, under Xvfb when there is no display) with build/fiji as its
# plugins folder, as a user who copied the install folder would; run Apply Transform and
# Register Multimodal Images from a macro and check what happened. Screenshots go to
# build/screenshots/ (apply-transform.png, register.png, and dialog-*.png of every command's
# dialog); `make docs-images` copies them to docs/images/ for the README. A test run never
# writes into the work tree.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
gradle --no-daemon --console=plain -q fijiInstall imagejJar
out=$(mktemp -d)
# The demo pair: hematoxylin (fixed) and DAB moved by demo/transform.json (moving).
target/bin/comir unmix --input .deps/demo/ihc.png --out-dir "$out/stains" 2>/dev/null
target/bin/comir apply --transform demo/transform.json --input "$out/stains/dab.tif" --output "$out/dab-moved.tif" 2>/dev/null
if [[ -z "${DISPLAY:-}" ]]; then xvfb=(xvfb-run -a -s "-screen 0 1100x900x24"); else xvfb=(); fi
# No java.library.path: the plugin must find lib/linux64 next to its own plugins folder.
timeout 300 "${xvfb[@]}" java -Dplugins.dir="$root/build/fiji" -jar build/imagej/ij.jar \
  -macro "$root/scripts/gui-check.ijm" \
  "$root/.deps/demo/ihc.png|$root/demo/transform.json|$out|$out/stains/hematoxylin.tif|$out/dab-moved.tif|$root/models/ihc-hdab-small.safetensors" \
  >"$out/imagej.log" 2>&1 || true
fail() { echo "GUI check FAILED: $*"; cat "$out/imagej.log" "$out/gui-check.txt" 2>/dev/null; echo "0 passed, 1 failed"; exit 1; }
[[ -f "$out/gui-check.txt" ]] || fail "the macro did not finish"
grep -q '^apply=comir.fiji.ApplyTransform' "$out/gui-check.txt" || fail "Apply Transform menu command missing"
grep -q '^register=comir.fiji.RegisterMultimodal' "$out/gui-check.txt" || fail "Register menu command missing"
grep -q '^applied=ihc-transformed$' "$out/gui-check.txt" || fail "no Apply Transform result window"
grep -q '^registered=Registered ' "$out/gui-check.txt" || fail "no registration overlay window"
angle=$(sed -n 's/^angle=//p' "$out/gui-check.txt")
awk -v a="$angle" 'BEGIN { exit !(a > -15.5 && a < -14.5) }' || fail "registered angle $angle, expected -15"
[[ -s "$out/apply-transform.png" && -s "$out/register.png" ]] || fail "no screenshots"
shots="$root/build/screenshots"
mkdir -p "$shots"
cp "$out/apply-transform.png" "$out/register.png" "$shots/"
# Every command's dialog, opened as a user would and cancelled.
timeout 300 "${xvfb[@]}" gradle --no-daemon --console=plain -q dialogScreenshots -Pshots="$shots" \
  -Pimages="$out/stains/hematoxylin.tif,$out/dab-moved.tif" >"$out/dialogs.log" 2>&1 || fail "dialog screenshots: $(cat "$out/dialogs.log")"
echo "GUI check: menu commands present; Apply Transform and Register ran from a macro (angle $angle°, expected -15°); $(tail -n 1 "$out/dialogs.log"); screenshots in build/screenshots/ (make docs-images copies them to docs/images/)"
echo "3 passed, 0 failed"
