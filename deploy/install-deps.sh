#!/usr/bin/env bash
# Installs the system packages Vltava's build needs, if they are missing:
# libclang (RocksDB's bindgen). Everything else comes from crates.io.
set -euo pipefail
have_libclang() {
  # Any one of these locations is enough (ls fails when a pattern matches nothing, so count lines).
  # Only libclang itself counts: libclang-cpp (installed on its own by some images) is not what
  # bindgen loads.
  [ -n "${LIBCLANG_PATH:-}" ] && return 0
  [ "$(ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/llvm-*/lib/libclang-[0-9]*.so* \
    /usr/lib/*-linux-gnu/libclang.so* /usr/lib/*-linux-gnu/libclang-[0-9]*.so* 2>/dev/null | wc -l)" -gt 0 ]
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
