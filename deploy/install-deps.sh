#!/usr/bin/env bash
# Installs the system packages Vltava's build needs, if they are missing:
# libclang (RocksDB's bindgen). Everything else comes from crates.io.
set -euo pipefail
have_libclang() {
  ls /usr/lib/llvm-*/lib/libclang*.so* /usr/lib/x86_64-linux-gnu/libclang*.so* /usr/lib/aarch64-linux-gnu/libclang*.so* >/dev/null 2>&1
}
if have_libclang; then
  exit 0
fi
echo "installing libclang-dev (needed by RocksDB's bindgen)..." >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq libclang-dev >/dev/null
have_libclang || { echo "libclang is still missing after installing libclang-dev" >&2; exit 1; }
