#!/usr/bin/env bash
# Benchmarks the gateway's cost and tracing's cost on a release `vltava local-cluster` (1 controller,
# 3 brokers, 1 gateway, separate processes on this machine), for issue 5:
#   1. produce and consume throughput of NUM_RECORDS 100-byte records (6 partitions, RF 1, acks=1),
#      straight to the leaders with the Rust SDK and then through the gateway (`--via-gateway`),
#      in the same run;
#   2. produce latency at a fixed LATENCY_RATE records/s (linger 0), both ways;
#   3. the same produce throughput with trace export on: the cluster restarted with
#      OTEL_EXPORTER_OTLP_ENDPOINT pointing at a sink (deploy/otlp-sink.py, which accepts and drops
#      every export) and the producer's spans sampled, versus export off.
# Usage: deploy/bench-gateway.sh [NUM_RECORDS] [LATENCY_RECORDS] [LATENCY_RATE]
# Env: VLTAVA_BIN (default: $CARGO_TARGET_DIR/release/vltava), PYTHON (a python with grpcio, e.g.
#      the venv examples/python/run-test.sh builds; default $HOME/.cache/vltava-py-venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000000}
LAT_N=${2:-100000}
LAT_RATE=${3:-10000}
BIN="${VLTAVA_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/vltava-target}/release/vltava}"
PYTHON=${PYTHON:-$HOME/.cache/vltava-py-venv/bin/python}
[ -x "$BIN" ] || { echo "build it first: make release (or set VLTAVA_BIN)" >&2; exit 1; }
export RUST_LOG=${RUST_LOG:-warn}
DATA=$(mktemp -d -t vltava-bench-gateway.XXXXXX)
CLUSTER_PID=""
SINK_PID=""

stop_cluster() {
  [ -n "$CLUSTER_PID" ] || return 0
  kill -TERM "$CLUSTER_PID" 2>/dev/null || true
  for _ in $(seq 300); do kill -0 "$CLUSTER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$CLUSTER_PID" 2>/dev/null || true
  wait "$CLUSTER_PID" 2>/dev/null || true
  CLUSTER_PID=""
  pkill -KILL -f "$DATA" 2>/dev/null || true # anything of the cluster still running
}
cleanup() {
  local status=$?
  trap - EXIT
  stop_cluster
  [ -z "$SINK_PID" ] || kill "$SINK_PID" 2>/dev/null || true
  rm -rf "$DATA"
  exit "$status"
}
trap cleanup EXIT

start_cluster() { # directory
  mkdir -p "$1"
  "$BIN" local-cluster --data-dir "$1" --controllers 1 --brokers 3 --base-port 0 >"$1.address" 2>"$1.log" &
  CLUSTER_PID=$!
  for _ in $(seq 1200); do [ -s "$1.address" ] && break; sleep 0.1; done
  [ -s "$1.address" ] || { echo "local-cluster did not start" >&2; tail "$1.log" >&2; exit 1; }
  SERVER=$(head -n 1 "$1.address")
}

produce() { # label topic extra-args...
  local label=$1 topic=$2
  shift 2
  printf '%-34s ' "$label"
  "$BIN" perf produce --topic "$topic" --num-records "$N" --record-size 100 --acks 1 --json \
    --server "$SERVER" "$@" | tail -n 1
}

echo "== $(date -u +%FT%TZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $BIN"
start_cluster "$DATA/a"
for t in direct gw; do "$BIN" topic create "bench-$t" --partitions 6 --replication-factor 1 --server "$SERVER" >/dev/null; done
sleep 1
echo "== throughput, $N records"
produce "produce, direct" bench-direct
produce "produce, via gateway" bench-gw --via-gateway
for mode in direct gw; do
  flag=""; [ "$mode" = gw ] && flag=--via-gateway
  printf '%-34s ' "consume, $mode"
  "$BIN" perf consume --topic "bench-$mode" --num-records "$N" --json --server "$SERVER" $flag | tail -n 1
done
echo "== latency, $LAT_N records at $LAT_RATE/s, linger 0"
for mode in direct gw; do
  flag=""; [ "$mode" = gw ] && flag=--via-gateway
  "$BIN" topic create "lat-$mode" --partitions 6 --replication-factor 1 --server "$SERVER" >/dev/null
  sleep 0.5
  printf '%-34s ' "latency, $mode"
  "$BIN" perf produce --topic "lat-$mode" --num-records "$LAT_N" --record-size 100 --acks 1 \
    --throughput "$LAT_RATE" --linger-ms 0 --json --server "$SERVER" $flag | tail -n 1
done
stop_cluster

if [ -x "$PYTHON" ]; then
  SINK_PORT=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$PYTHON" deploy/otlp-sink.py "$SINK_PORT" >"$DATA/sink.log" 2>&1 &
  SINK_PID=$!
  sleep 1
  echo "== tracing: export on (OTLP to a sink on :$SINK_PORT) versus off, $N records"
  start_cluster "$DATA/off"
  "$BIN" topic create t --partitions 6 --replication-factor 1 --server "$SERVER" >/dev/null; sleep 1
  produce "produce, export off" t --via-gateway
  stop_cluster
  OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$SINK_PORT" start_cluster "$DATA/on"
  "$BIN" topic create t --partitions 6 --replication-factor 1 --server "$SERVER" >/dev/null; sleep 1
  OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$SINK_PORT" produce "produce, export on" t --via-gateway
  stop_cluster
  echo "sink: $(tail -n 1 "$DATA/sink.log")"
else
  echo "== tracing overhead skipped: no python with grpcio at $PYTHON (run make test-python once)"
fi
