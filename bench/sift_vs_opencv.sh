#!/usr/bin/env bash
# Benchmark: our SIFT and feature registration against OpenCV's (opencv-python-headless from
# PyPI), same 1-megapixel images, same keypoint budget, measured in one run; prints ratios
# (ours / OpenCV: below 1.0 means we are faster). Usage: bench/sift_vs_opencv.sh
source "$(dirname "$0")/common.sh"
bench_venv "cv2, numpy" opencv-python-headless numpy
build_bench bench_registration
bench=target/release/examples/bench_registration
# 1 MP test pair from the demo image: hematoxylin upsampled ×2, and a rotated+shifted copy.
unmix_demo
upsampled_pair

val() { sed -n "s/^$1 //p"; }
ours_all=$($bench sift "$work/fixed.png" 4000)
n=$(echo "$ours_all" | val keypoints)
ours_1=$(RAYON_NUM_THREADS=1 $bench sift "$work/fixed.png" 4000)
cv_1=$($venv/bin/python bench/opencv_peer.py 1 sift "$work/fixed.png" "$n")
cv_all=$($venv/bin/python bench/opencv_peer.py "$(nproc)" sift "$work/fixed.png" "$n")
reg_ours=$($bench register "$work/fixed.png" "$work/moving.png")
reg_cv=$($venv/bin/python bench/opencv_peer.py "$(nproc)" register "$work/fixed.png" "$work/moving.png")
amd_ours=$($bench amd-alone "$work/fixed.png" "$work/moving.png")
amd_polished=$($bench amd "$work/fixed.png" "$work/moving.png")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf "%-44s %10s %10s %8s\n" "1 MP, $n keypoints" "ours (s)" "OpenCV (s)" "ratio"
row() { printf "%-44s %10s %10s %8s\n" "$1" "$2" "$3" "$(ratio "$2" "$3")"; }
s() { echo "$1" | val seconds; }
row "SIFT detect+describe, 1 thread" "$(s "$ours_1")" "$(s "$cv_1")"
row "SIFT detect+describe, $(nproc) threads" "$(s "$ours_all")" "$(s "$cv_all")"
row "SIFT+matching+RANSAC registration" "$(s "$reg_ours")" "$(s "$reg_cv")"
echo "registration matrices (truth, the inverse of rot.json: 0.9962 0.0872 -58.03 / -0.0872 0.9962 25.16):"
echo "  ours:   $(echo "$reg_ours" | val matrix) ($(echo "$reg_ours" | val inliers) inliers)"
echo "  OpenCV: $(echo "$reg_cv" | val matrix) ($(echo "$reg_cv" | val inliers) inliers)"
echo "  α-AMD (ours, rigid): $(echo "$amd_ours" | val seconds) s, matrix $(echo "$amd_ours" | val matrix)"
echo "  α-AMD + the MI polish, as comir register --method amd runs them: $(echo "$amd_polished" | val seconds) s, matrix $(echo "$amd_polished" | val matrix)"
