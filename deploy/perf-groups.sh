#!/usr/bin/env bash
# Measures the group coordinator against a release `vltava local-cluster` (1 controller, 3
# brokers, the gateway) with a 250 ms group heartbeat interval: a member joining a group of 10
# members on 100 partitions (`vltava perf rebalance`, 5 runs), offset commits as fast as one
# coordinator takes them (`vltava perf commits`, 10 and 100 offsets a commit), and the commit
# latency at 1,000 commits/s. The figures in docs/benchmarks.md come from this script.
# Env: VLTAVA_BIN (default: $CARGO_TARGET_DIR/release/vltava).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${VLTAVA_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/vltava-target}/release/vltava}"
[ -x "$BIN" ] || { echo "build it first: make release" >&2; exit 1; }
DATA=$(mktemp -d)
export VLTAVA_BROKER__GROUPS__HEARTBEAT_INTERVAL=250ms
RUST_LOG=warn "$BIN" local-cluster --data-dir "$DATA" --base-port 0 --controllers 1 --brokers 3 2>"$DATA/launcher.log" &
LAUNCHER=$!
trap 'kill $LAUNCHER 2>/dev/null; wait $LAUNCHER 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 300); do grep -q "serving on" "$DATA/launcher.log" 2>/dev/null && break; sleep 0.1; done
ADDR=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["client_address"])' "$DATA/cluster.json")
export VLTAVA_SERVER="$ADDR"
for run in 1 2 3 4 5; do
  echo "== perf rebalance (run $run): 10 members, 100 partitions, one joins"
  "$BIN" perf rebalance --members 10 --partitions 100 --json | tail -n 1
done
for batch in 10 100; do
  echo "== perf commits: 20000 commits of $batch offsets, 16 in flight"
  "$BIN" perf commits --commits 20000 --batch "$batch" --concurrency 16 --json | tail -n 1
done
echo "== perf commits: 10000 commits of 1 offset at 1000 commits/s"
"$BIN" perf commits --commits 10000 --batch 1 --concurrency 8 --rate 1000 --json | tail -n 1
