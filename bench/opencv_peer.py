"""The peer of examples/bench_registration.rs: OpenCV's SIFT (and SIFT + matching + RANSAC)
on the same files, printing the same "key value" lines."""
import sys, time
import cv2
import numpy as np


def load(path):
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED).astype(np.float32)
    if img.ndim == 3:
        img = img.mean(axis=2)
    lo, hi = np.percentile(img, [0.5, 99.5])
    return np.clip((img - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)


def best_of(n, f):
    best, out = float("inf"), None
    for _ in range(n):
        t = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t)
    return best, out


def main():
    threads = int(sys.argv[1])
    cv2.setNumThreads(threads)
    mode = sys.argv[2]
    if mode == "sift":
        img, n = load(sys.argv[3]), int(sys.argv[4])
        sift = cv2.SIFT_create(nfeatures=n)
        t, (kp, _) = best_of(5, lambda: sift.detectAndCompute(img, None))
        print(f"seconds {t:.4f}\nkeypoints {len(kp)}")
    elif mode == "register":
        a, b = load(sys.argv[3]), load(sys.argv[4])
        sift = cv2.SIFT_create(nfeatures=4000)

        def run():
            ka, da = sift.detectAndCompute(a, None)
            kb, db = sift.detectAndCompute(b, None)
            pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(da, db, k=2)
            good = [m for m, n in (p for p in pairs if len(p) == 2) if m.distance < 0.9 * n.distance]
            src = np.float32([ka[m.queryIdx].pt for m in good])
            dst = np.float32([kb[m.trainIdx].pt for m in good])
            return cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=3.0)

        t, (m, inl) = best_of(3, run)
        print(f"seconds {t:.4f}\nmatrix {' '.join(str(v) for v in m.flatten())}\ninliers {int(inl.sum())}")


main()
