#!/usr/bin/env python3
"""Check what `make demo` wrote, as a user would look at it: the recovered transform undoes
demo/transform.json (rotation within 0.5° of its inverse, corners within 2 px), and every file
of demo-out/registration/ is there and parses (transform JSON, both BigWarp files, NGFF JSON,
TIFFs, PNGs, report). Standard library only: it runs on a fresh machine.

    scripts/check-demo.py [demo-out] [demo/transform.json]
"""
import csv
import json
import math
import struct
import sys
from pathlib import Path

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)
    return ok


def apply(m, x, y):
    return m[0][0] * x + m[0][1] * y + m[0][2], m[1][0] * x + m[1][1] * y + m[1][2]


def compose(a, b):
    """a ∘ b for 2×3 affine matrices."""
    return [[a[r][0] * b[0][c] + a[r][1] * b[1][c] + (a[r][2] if c == 2 else 0.0) for c in range(3)] for r in range(2)]


def tiff_size(path):
    data = path.read_bytes()
    order = {b"II": "<", b"MM": ">"}.get(data[:2])
    if order is None or struct.unpack(order + "H", data[2:4])[0] != 42:
        raise ValueError("not a TIFF file")
    ifd = struct.unpack(order + "I", data[4:8])[0]
    n = struct.unpack(order + "H", data[ifd:ifd + 2])[0]
    tags = {}
    for i in range(n):
        tag, typ, _count, value = struct.unpack(order + "HHII", data[ifd + 2 + 12 * i: ifd + 14 + 12 * i])
        tags[tag] = value if typ == 4 else value & 0xFFFF if order == "<" else value >> 16
    return tags[256], tags[257]


def png_size(path):
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG file")
    return struct.unpack(">II", data[16:24])


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "demo-out")
    truth_file = Path(sys.argv[2] if len(sys.argv) > 2 else "demo/transform.json")
    reg = out / "registration"
    # demo/transform.json moved the DAB image: dab-moved = dab ∘ truth⁻¹, so registering it back
    # onto hematoxylin (the same grid as dab) must give fixed → moving = truth⁻¹.
    truth = json.loads(truth_file.read_text())["matrix"]
    truth_angle = math.degrees(math.atan2(truth[1][0], truth[0][0]))

    expected = ["transform.json", "bigwarp-landmarks.csv", "bigwarp-landmarks.json", "ngff-affine.json",
                "warped.tif", "overlay.png", "comir-overlay.png", "comir-fixed.tif", "comir-moving.tif", "report.json"]
    for name in expected:
        check((reg / name).is_file() and (reg / name).stat().st_size > 0, f"{name} written")

    report = json.loads((reg / "report.json").read_text())
    angle = report["rotation_degrees"]
    check(abs(angle + truth_angle) <= 0.5, f"rotation {angle:.3f}° within 0.5° of {-truth_angle:.3f}°")
    check(report["quality"]["passed"] is True, f"quality check passed ({report['quality']})")

    tf = json.loads((reg / "transform.json").read_text())
    check(tf["format"] == "comir-transform" and tf["direction"] == "fixed_to_moving", "transform.json: format and direction")
    m = tf["matrix"]
    w, h = tf["fixed"]["width"], tf["fixed"]["height"]
    # found ∘ truth should be the identity: mean corner displacement in pixels
    ident = compose(m, truth)
    corners = [(0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1)]
    err = sum(math.dist(apply(ident, x, y), (x, y)) for x, y in corners) / 4
    check(err <= 2.0, f"transform.json undoes demo/transform.json: mean corner error {err:.3f} px (≤ 2)")
    check(m == report["matrix_fixed_to_moving_px"], "report.json and transform.json hold the same matrix")

    fixed_cal = (tf["fixed"].get("calibration") or {})
    moving_cal = (tf["moving"].get("calibration") or {})
    rows = list(csv.reader((reg / "bigwarp-landmarks.csv").read_text().splitlines()))
    ok = len(rows) >= 9 and all(len(r) == 6 and r[1] == "true" for r in rows)
    check(ok, f"bigwarp-landmarks.csv: {len(rows)} rows of 6 fields, all active")
    worst = 0.0
    for r in rows:
        mx, my, fx, fy = map(float, r[2:6])
        px, py = fx / fixed_cal.get("pixel_width", 1), fy / fixed_cal.get("pixel_height", 1)
        qx, qy = apply(m, px, py)
        worst = max(worst, abs(qx * moving_cal.get("pixel_width", 1) - mx), abs(qy * moving_cal.get("pixel_height", 1) - my))
    check(worst < 1e-6, f"bigwarp-landmarks.csv: every pair is fixed → T(fixed) (worst {worst:.2e})")

    lj = json.loads((reg / "bigwarp-landmarks.json").read_text())
    lm = lj["landmarks"]
    check(lj["type"] in ("Rotation", "Similarity", "Affine", "Translation") and lm["type"] == "BigWarpLandmarks"
          and len(lm["movingPoints"]) == len(lm["fixedPoints"]) == len(rows), "bigwarp-landmarks.json: BigWarp landmarks, same points")

    ngff = json.loads((reg / "ngff-affine.json").read_text())
    check(ngff.get("type") == "affine" and len(ngff["affine"]) == 2 and all(len(r) == 3 for r in ngff["affine"])
          and ngff["input"] == "fixed" and ngff["output"] == "moving", "ngff-affine.json: a bare RFC-5 affine, fixed → moving")

    for name in ("warped.tif",):
        check(tiff_size(reg / name) == (w, h), f"{name}: {w}×{h}, the fixed grid")
    for name in ("comir-fixed.tif", "comir-moving.tif"):
        check(len(tiff_size(reg / name)) == 2, f"{name} is a TIFF")
    for name in ("overlay.png", "comir-overlay.png"):
        check(png_size(reg / name)[0] > 0, f"{name} is a PNG")

    print(f"demo check: {len(failures)} failed" if failures else "demo check: all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
