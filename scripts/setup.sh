#!/usr/bin/env bash
# Install what the build and tests need, once; later runs find everything in place.
#   scripts/setup.sh          Rust toolchain check, libtorch cache, demo data
#   scripts/setup.sh --java   also Gradle (Debian's) for the Fiji plugin
#   scripts/setup.sh --gui    also Xvfb for the GUI check
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
need_java=0; need_gui=0
for a in "$@"; do case $a in --java) need_java=1;; --gui) need_gui=1; need_java=1;; esac; done

log() { echo "[setup] $*" >&2; }
apt_install() {
  if [[ $(id -u) -ne 0 ]]; then
    log "please install the Debian packages: $* (e.g. sudo apt-get install $*)"; exit 1
  fi
  log "installing Debian packages: $*"
  if [[ ! -f /var/cache/comir-apt-updated ]] || [[ -z $(find /var/cache/comir-apt-updated -mmin -1440 2>/dev/null) ]]; then
    apt-get update -qq >&2 && touch /var/cache/comir-apt-updated
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

command -v cargo >/dev/null || { log "Rust is needed: install it from https://rustup.rs (cargo 1.80 or newer)"; exit 1; }
command -v cc >/dev/null || apt_install gcc
command -v python3 >/dev/null || apt_install python3 python3-pip
if [[ $need_java == 1 ]]; then
  command -v javac >/dev/null || apt_install openjdk-17-jdk-headless
  command -v gradle >/dev/null || apt_install gradle
fi
if [[ $need_gui == 1 ]]; then
  command -v xvfb-run >/dev/null || apt_install xvfb xauth
fi
"$root/scripts/libtorch.sh" >/dev/null
"$root/scripts/demo-data.sh"
