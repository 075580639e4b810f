#!/usr/bin/env bash
# Measures what the log cleaner costs producers, against a release `vltava dev` on this machine:
# `vltava perf produce` of keyed 100-byte records (acks=all, 1 partition, 10,000 keys) to a
# `cleanup.policy=delete` topic (no cleaning), to a compacted topic whose records are too young to
# clean (the compacted append path alone), and to a compacted topic with small segments and
# min.cleanable.dirty.ratio=0.1, so that the cleaner (checked every second) compacts it over and
# over while the producer runs; twice each, alternating. The broker's cleaner metrics after the
# compacted runs show how much it cleaned meanwhile. The figures in docs/benchmarks.md come from
# this script.
# Usage: deploy/perf-cleaner.sh [NUM_RECORDS]
# Env: VLTAVA_BIN (default: $CARGO_TARGET_DIR/release/vltava).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-3000000}
BIN="${VLTAVA_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/vltava-target}/release/vltava}"
[ -x "$BIN" ] || { echo "build it first: make release" >&2; exit 1; }
DATA=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ADDR="127.0.0.1:$(free_port)"
METRICS="127.0.0.1:$(free_port)"
VLTAVA_BROKER__CLEANER_INTERVAL=1s VLTAVA_METRICS__LISTEN="$METRICS" RUST_LOG=warn \
  "$BIN" dev --listen "$ADDR" --data-dir "$DATA" 2>"$DATA/server.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 100); do grep -q "serving on" "$DATA/server.log" 2>/dev/null && break; sleep 0.1; done
export VLTAVA_SERVER="$ADDR"
cleaner() { curl -s "http://$METRICS/metrics" 2>/dev/null | grep -E '^vltava_broker_cleaner_(passes|bytes|records_removed)_total' || true; }
for round in 1 2; do
  # delete: no cleaning; compact-idle: a compacted topic whose records are all too young to clean
  # (min.compaction.lag.ms of a day): the compacted append path alone; compact: cleaned meanwhile.
  for mode in delete compact-idle compact; do
    TOPIC="perf-cleaner-$mode-$round"
    policy=${mode%-idle}
    lag=$([ "$mode" = compact-idle ] && echo 86400000 || echo 0)
    "$BIN" topic create "$TOPIC" --partitions 1 --config cleanup.policy=$policy \
      --config segment.bytes=8388608 --config min.cleanable.dirty.ratio=0.1 \
      --config min.compaction.lag.ms=$lag >/dev/null
    echo "== perf produce: $N keyed records of 100 bytes (10,000 keys), acks=all, $mode"
    "$BIN" perf produce --topic "$TOPIC" --num-records "$N" --record-size 100 --acks all \
      --key-space 10000 --json | tail -n 1
    [ "$mode" = compact ] && cleaner
  done
done
