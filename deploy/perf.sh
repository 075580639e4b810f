#!/usr/bin/env bash
# Measures produce and consume throughput against a release `vltava dev` on this machine.
# Usage: deploy/perf.sh [NUM_RECORDS] [RECORD_SIZE] [PARTITIONS]
# Prints each `vltava perf` summary; the figures in docs/benchmarks.md come from this script.
# Env: VLTAVA_BIN (default: $CARGO_TARGET_DIR/release/vltava).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000000}
SIZE=${2:-100}
PARTITIONS=${3:-6}
BIN="${VLTAVA_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/vltava-target}/release/vltava}"
[ -x "$BIN" ] || { echo "build it first: make release" >&2; exit 1; }
DATA=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ADDR="127.0.0.1:$PORT"
RUST_LOG=warn "$BIN" dev --listen "$ADDR" --data-dir "$DATA" 2>"$DATA/server.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 100); do grep -q "serving on" "$DATA/server.log" 2>/dev/null && break; sleep 0.1; done
export VLTAVA_SERVER="$ADDR"
for ACKS in 1 all; do
  TOPIC="perf-acks-$ACKS"
  "$BIN" topic create "$TOPIC" --partitions "$PARTITIONS" >/dev/null
  echo "== perf produce: $N records of $SIZE bytes, acks=$ACKS, $PARTITIONS partitions"
  "$BIN" perf produce --topic "$TOPIC" --num-records "$N" --record-size "$SIZE" --acks "$ACKS" --json | tail -n 1
done
echo "== perf consume: $N records"
"$BIN" perf consume --topic perf-acks-1 --num-records "$N" --json | tail -n 1
