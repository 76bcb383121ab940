"""The peer of bench/mi_vs_elastix.sh: elastix (PyPI itk-elastix) rigid registration with
Mattes mutual information, its default rigid parameter map, on the same image files as ours.

    python elastix_peer.py THREADS FIXED MOVING

Prints "seconds S" and "matrix a b tx c d ty" (fixed → moving, pixels) like
examples/bench_registration.rs. elastix's transform maps fixed points to moving points, the
direction we use; with unit spacing and zero origin its physical coordinates are our pixel
coordinates (pixel centres at integer indices).
"""
import math
import sys
import time

import itk


def main():
    threads, fixed_path, moving_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    itk.MultiThreaderBase.SetGlobalDefaultNumberOfThreads(threads)
    fixed = itk.imread(fixed_path, itk.F)
    moving = itk.imread(moving_path, itk.F)
    for image in (fixed, moving):
        image.SetSpacing((1.0, 1.0))
        image.SetOrigin((0.0, 0.0))
    params = itk.ParameterObject.New()
    rigid = params.GetDefaultParameterMap("rigid")
    params.AddParameterMap(rigid)
    start = time.perf_counter()
    _, result = itk.elastix_registration_method(fixed, moving, parameter_object=params, log_to_console=False)
    seconds = time.perf_counter() - start
    angle, tx, ty = (float(v) for v in result.GetParameter(0, "TransformParameters"))
    cx, cy = (float(v) for v in result.GetParameter(0, "CenterOfRotationPoint"))
    c, s = math.cos(angle), math.sin(angle)
    # p_moving = R (p_fixed - centre) + centre + t
    print(f"seconds {seconds:.4f}")
    print(f"matrix {c} {-s} {cx - c * cx + s * cy + tx} {s} {c} {cy - s * cx - c * cy + ty}")


if __name__ == "__main__":
    main()
