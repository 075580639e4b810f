#!/usr/bin/env bash
# Installs the system packages the test suite needs beyond the build's, if they are missing:
# kcat (Debian's librdkafka command-line client, for the Kafka protocol tests).
set -euo pipefail
if command -v kcat >/dev/null 2>&1; then
  exit 0
fi
echo "installing kcat (the Kafka protocol tests use it)..." >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq kcat >/dev/null
command -v kcat >/dev/null 2>&1 || { echo "kcat is still missing after installing it" >&2; exit 1; }
