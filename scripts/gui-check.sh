#!/usr/bin/env bash
# Start real ImageJ (a window, under Xvfb when there is no display) with build/fiji as its
# plugins folder, as a user who copied the install folder would; run the Apply Transform
# command from a macro and check what happened. Screenshot: docs/images/apply-transform.png.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
gradle --no-daemon --console=plain -q fijiInstall imagejJar
out=$(mktemp -d)
if [[ -z "${DISPLAY:-}" ]]; then xvfb=(xvfb-run -a -s "-screen 0 1100x800x24"); else xvfb=(); fi
# No java.library.path: the plugin must find lib/linux64 next to its own plugins folder.
timeout 180 "${xvfb[@]}" java -Dplugins.dir="$root/build/fiji" -jar build/imagej/ij.jar \
  -macro "$root/scripts/gui-check.ijm" "$root/.deps/demo/ihc.png|$root/demo/transform.json|$out" \
  >"$out/imagej.log" 2>&1 || true
fail() { echo "GUI check FAILED: $*"; cat "$out/imagej.log" "$out/gui-check.txt" 2>/dev/null; echo "0 passed, 1 failed"; exit 1; }
[[ -f "$out/gui-check.txt" ]] || fail "the macro did not finish"
grep -q '^command=comir.fiji.ApplyTransform' "$out/gui-check.txt" || fail "menu command missing"
grep -q '^result=ihc-transformed$' "$out/gui-check.txt" || fail "no result window"
[[ -s "$out/apply-transform.png" ]] || fail "no screenshot"
mkdir -p docs/images
cp "$out/apply-transform.png" docs/images/apply-transform.png
echo "GUI check: menu command present, macro produced 'ihc-transformed', screenshot docs/images/apply-transform.png"
echo "1 passed, 0 failed"
