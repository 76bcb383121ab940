#!/bin/bash
# The command line in its two builds, side by side in target/bin (what `make build` makes):
#   comir        without libtorch: registers, represents, exports on the CPU kernels alone,
#                with no libtorch start-up (0.15-0.3 s of every command); it hands training,
#                `info`, and every command on a machine with an NVIDIA driver or without AVX2
#                to comir-torch
#   comir-torch  with libtorch (training, GPUs); also target/release/comir, which the Rust
#                and Java tests run, and the JNI library libcomir.so beside it
# Extra arguments go to the libtorch build (e.g. --features ...).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release "$@"
quiet=(); [[ ${1:-} == -q ]] && quiet=(-q)
cargo build "${quiet[@]}" --release --no-default-features --bin comir --target-dir target/lite
mkdir -p target/bin
# install unlinks the old file first: a running copy keeps its own.
install -m 755 target/release/comir target/bin/comir-torch
install -m 755 target/lite/release/comir target/bin/comir
