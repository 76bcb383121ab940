#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz / libFuzzer, AddressSanitizer) of every parser of untrusted
# files. Needs a nightly toolchain; installs cargo-fuzz if missing.
#
#   scripts/fuzz.sh [seconds per target, default 600] [target ...]
#
# New interesting inputs are merged (minimised) into fuzz/corpus/<target>/, which
# tests/fuzz_corpus.rs replays in every `cargo test`; crashers land in fuzz/artifacts/<target>/
# (keep them: the same test replays them once fixed). A log per target goes to fuzz/logs/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds=${1:-600}
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(decode_image model_file transform_json bigwarp_csv bigwarp_json)

export LIBTORCH=${LIBTORCH:-$(scripts/libtorch.sh)}
export LD_LIBRARY_PATH="$LIBTORCH/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# Big declared sizes must be refused, not allocated: a low limit makes any allocation past it a finding.
export COMIR_MAX_IMAGE_BYTES=${COMIR_MAX_IMAGE_BYTES:-67108864}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cargo +nightly fuzz build --release 2>&1 | tail -n 3 >&2

mkdir -p fuzz/logs
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  work=$(mktemp -d)
  echo "[fuzz] $t for ${seconds}s" >&2
  # Fuzz into a scratch corpus (seeded with ours), then merge only what adds coverage.
  cargo +nightly fuzz run --release "$t" "$work" "fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -rss_limit_mb=4096 -max_len=65536 -print_final_stats=1 \
    > "fuzz/logs/$t.log" 2>&1 || echo "[fuzz] $t: FAILED, see fuzz/logs/$t.log and fuzz/artifacts/$t" >&2
  merged="fuzz/corpus/$t.merged"
  rm -rf "$merged" && mkdir -p "$merged"
  if cargo +nightly fuzz run --release "$t" "$merged" "fuzz/corpus/$t" "$work" -- -merge=1 >"fuzz/logs/$t.merge.log" 2>&1 \
     && [[ -n "$(ls -A "$merged")" ]]; then
    rm -rf "fuzz/corpus/$t" && mv "$merged" "fuzz/corpus/$t"
  else
    echo "[fuzz] $t: merging the corpus failed, see fuzz/logs/$t.merge.log; kept the old one" >&2
    rm -rf "$merged"
  fi
  rm -rf "$work"
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb|Done [0-9]+ runs" "fuzz/logs/$t.log" | sed "s/^/[fuzz] $t: /" >&2 || true
done
