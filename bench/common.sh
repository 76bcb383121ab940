# Sourced by the bench scripts: the prelude they share. It moves to the repository root,
# provisions the project (scripts/setup.sh), and makes a temporary $work (kept when KEEP is
# set, to look at the inputs afterwards); $comir is the release CLI.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/setup.sh >/dev/null
comir=target/release/comir
venv=.deps/bench-venv
work=$(mktemp -d)
[[ -n ${KEEP:-} ]] || trap 'rm -rf "$work"' EXIT

# build_bench [EXAMPLE...]: the CLI and the named examples, release build.
build_bench() {
  local args=(--bin comir)
  for e in "$@"; do args+=(--example "$e"); done
  cargo build -q --release "${args[@]}"
}

# unmix_demo: the demo image's stains (hematoxylin.tif, eosin.tif, dab.tif) into $work.
unmix_demo() {
  $comir unmix --input .deps/demo/ihc.png --out-dir "$work" 2>/dev/null
}

# bench_venv MODULES PACKAGE...: the peers' shared Python venv, with the PACKAGEs installed
# unless `import MODULES` already works (one venv serves several peers, so check each's own).
bench_venv() {
  local modules=$1
  shift
  [[ -x $venv/bin/python ]] || python3 -m venv $venv
  $venv/bin/python -c "import $modules" 2>/dev/null || $venv/bin/pip -q install "$@"
}
