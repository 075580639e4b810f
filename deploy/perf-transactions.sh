#!/usr/bin/env bash
# Measures exactly-once against a release `vltava local-cluster` (1 controller, 3 brokers, the
# gateway; topics with 3 replicas, min.insync.replicas=2): `vltava perf produce` of 100-byte
# records with acks=all with idempotence on and off, and as a transactional producer committing
# every 100 ms; then `vltava perf transactions` with 1 and 10 partitions per transaction. The
# figures in docs/benchmarks.md come from this script.
# Usage: deploy/perf-transactions.sh [NUM_RECORDS] [TRANSACTIONS]
# Env: VLTAVA_BIN (default: $CARGO_TARGET_DIR/release/vltava).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
T=${2:-500}
BIN="${VLTAVA_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/vltava-target}/release/vltava}"
[ -x "$BIN" ] || { echo "build it first: make release" >&2; exit 1; }
DATA=$(mktemp -d)
export VLTAVA_BROKER__TRANSACTIONS__STATE_TOPIC_NUM_PARTITIONS=3
export VLTAVA_BROKER__GROUPS__OFFSETS_TOPIC_NUM_PARTITIONS=3
RUST_LOG=warn "$BIN" local-cluster --data-dir "$DATA" --base-port 0 --controllers 1 --brokers 3 \
  --replication-factor 3 2>"$DATA/launcher.log" &
LAUNCHER=$!
trap 'kill $LAUNCHER 2>/dev/null; wait $LAUNCHER 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 300); do grep -q "serving on" "$DATA/launcher.log" 2>/dev/null && break; sleep 0.1; done
ADDR=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["client_address"])' "$DATA/cluster.json")
export VLTAVA_SERVER="$ADDR"
for mode in on off on off; do
  TOPIC="perf-idempotence-$mode-$RANDOM"
  "$BIN" topic create "$TOPIC" --partitions 6 --replication-factor 3 --config min.insync.replicas=2 >/dev/null
  enabled=$([ "$mode" = on ] && echo true || echo false)
  echo "== perf produce: $N records of 100 bytes, acks=all, RF 3, idempotence $mode"
  "$BIN" perf produce --topic "$TOPIC" --num-records "$N" --record-size 100 --acks all \
    --enable-idempotence "$enabled" --json | tail -n 1
done
TOPIC="perf-transactional-$RANDOM"
"$BIN" topic create "$TOPIC" --partitions 6 --replication-factor 3 --config min.insync.replicas=2 >/dev/null
echo "== perf produce: $N records of 100 bytes, acks=all, RF 3, transactions of 100 ms"
"$BIN" perf produce --topic "$TOPIC" --num-records "$N" --record-size 100 --acks all \
  --transactional-id "perf-$RANDOM" --transaction-duration-ms 100 --json | tail -n 1
for P in 1 10; do
  echo "== perf transactions: $T transactions of one 100-byte record on each of $P partitions"
  "$BIN" perf transactions --transactions "$T" --partitions-per-transaction "$P" --json | tail -n 1
done
