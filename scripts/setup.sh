#!/usr/bin/env bash
# Install what the build and tests need, once; later runs find everything in place.
#   scripts/setup.sh          Rust toolchain check, libtorch cache, demo data
#   scripts/setup.sh --java   also Java 17, Debian's Gradle and zig (the portable native library)
#                             for the Fiji plugin
#   scripts/setup.sh --gui    also Xvfb for the GUI check
#
# A fresh machine must already have: Rust (rustup), Python 3 with pip, and root or sudo for
# the Debian packages (C and C++ compilers, Java 17, gradle, xvfb) that are not installed yet.
# Everything is checked up front: one line per missing piece, before anything is fetched.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
need_java=0; need_gui=0
for a in "$@"; do case $a in --java) need_java=1;; --gui) need_gui=1; need_java=1;; esac; done

log() { echo "[setup] $*" >&2; }

missing=()      # pieces the user must provide: one message each
packages=()     # Debian packages this script can install itself (as root or with sudo)

if ! command -v cargo >/dev/null; then
  missing+=("Rust: install it with rustup (https://rustup.rs), cargo 1.81 or newer, and open a new shell")
elif ! cargo clippy --version >/dev/null 2>&1; then
  missing+=("clippy (make test runs it): rustup component add clippy")
fi
if ! command -v python3 >/dev/null; then
  missing+=("Python 3 with pip: e.g. apt-get install python3 python3-pip")
elif ! python3 -m pip --version >/dev/null 2>&1; then
  missing+=("pip for $(command -v python3): e.g. apt-get install python3-pip, or python3 -m ensurepip")
fi
command -v cc >/dev/null || packages+=(gcc)
command -v g++ >/dev/null || packages+=(g++)     # tch compiles its C++ wrapper of libtorch
if [[ $need_java == 1 ]]; then
  java_major=0
  if command -v javac >/dev/null; then
    java_major=$(javac -version 2>&1 | sed -E 's/^javac ([0-9]+).*/\1/; s/^1$/8/')
  fi
  if [[ ! $java_major =~ ^[0-9]+$ || $java_major -lt 17 ]]; then packages+=(openjdk-17-jdk-headless); fi
  command -v gradle >/dev/null || packages+=(gradle)
fi
if [[ $need_gui == 1 ]]; then
  command -v xvfb-run >/dev/null || packages+=(xvfb xauth)
fi

sudo=()
if [[ ${#packages[@]} -gt 0 && $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo=(sudo)
  else missing+=("Debian packages ${packages[*]}: run as root, or install them first: sudo apt-get install ${packages[*]}")
  fi
fi
if [[ ${#missing[@]} -gt 0 ]]; then
  log "this machine lacks what the build needs; nothing was changed:"
  for m in "${missing[@]}"; do log "  missing: $m"; done
  exit 1
fi

if [[ ${#packages[@]} -gt 0 ]]; then
  log "installing Debian packages: ${packages[*]}"
  stamp=/var/cache/comir-apt-updated
  if [[ -z $(find "$stamp" -mmin -1440 2>/dev/null) ]]; then
    "${sudo[@]}" apt-get update -qq >&2 && { "${sudo[@]}" touch "$stamp" 2>/dev/null || true; }
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >&2
fi
"$root/scripts/libtorch.sh" >/dev/null
"$root/scripts/demo-data.sh"
# The Fiji plugin's native library is linked by zig against glibc 2.28 (runs on older Linux).
if [[ $need_java == 1 ]]; then "$root/scripts/zig-tools.sh" >/dev/null; fi
