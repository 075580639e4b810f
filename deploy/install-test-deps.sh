#!/usr/bin/env bash
# Installs what the test suite needs beyond the build, if it is missing:
# - kcat (Debian's librdkafka command-line client) for the Kafka protocol tests;
# - iproute2 (ip netns, veth) and nftables for the chaos smoke (deploy/chaos-smoke.sh);
# - a Python venv with Kafka's own clients (confluent-kafka, kafka-python; pinned in
#   crates/cli/tests/kafka_clients/requirements.txt) in $VLTAVA_KAFKA_VENV
#   (default ~/.cache/vltava-kafka-venv), which crates/cli/tests/kafka_python.rs runs.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then $SUDO apt-get update -qq; apt_updated=1; fi
  $SUDO apt-get install -y -qq "$@" >/dev/null
}
if ! command -v kcat >/dev/null 2>&1; then
  echo "installing kcat (the Kafka protocol tests use it)..." >&2
  apt_install kcat
  command -v kcat >/dev/null 2>&1 || { echo "kcat is still missing after installing it" >&2; exit 1; }
fi

for tool in ip:iproute2 nft:nftables; do
  if ! command -v "${tool%%:*}" >/dev/null 2>&1; then
    echo "installing ${tool#*:} (the chaos smoke's network faults use it)..." >&2
    apt_install "${tool#*:}"
  fi
done

venv="${VLTAVA_KAFKA_VENV:-$HOME/.cache/vltava-kafka-venv}"
requirements="crates/cli/tests/kafka_clients/requirements.txt"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
  echo "creating the Python venv $venv" >&2
  rm -rf "$venv"
  if ! "$python" -m venv "$venv" 2>/dev/null; then
    # Debian's python3 keeps venv (ensurepip) in a separate package.
    rm -rf "$venv"
    apt_install python3-venv
    "$python" -m venv "$venv"
  fi
fi
stamp="$venv/.vltava-requirements.txt"
if ! cmp -s "$requirements" "$stamp"; then
  echo "installing $requirements into $venv" >&2
  PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 "$venv/bin/python" -m pip install --quiet -r "$requirements"
  cp "$requirements" "$stamp"
fi
