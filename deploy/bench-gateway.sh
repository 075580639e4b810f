#!/usr/bin/env bash
# Benchmarks the gateway's cost and tracing's cost on a release `vltava local-cluster` (1 controller,
# 3 brokers, 1 gateway, separate processes on this machine), for issue 5:
#   1. produce throughput of NUM_RECORDS 100-byte records (6 partitions, RF 1, acks=1, default
#      producer settings), straight to the leaders with the Rust SDK ("direct") and through the
#      gateway (`--via-gateway`), interleaved RUNS times in the same cluster; then consume
#      throughput of each produced topic, both ways;
#   2. produce latency at a fixed LATENCY_RATE records/s (linger 0), both ways;
#   3. tracing: the same produce through the gateway with the cluster restarted with trace export
#      on (OTEL_EXPORTER_OTLP_ENDPOINT pointing at deploy/otlp-sink.py, which accepts and drops every
#      export; every request is a sampled root span at the gateway and the broker) versus off.
# Every run prints perf's --json summary and the CPU each role used (cores: seconds of CPU per
# second of wall time, from /proc/PID/stat); a table of all runs comes last.
# Usage: deploy/bench-gateway.sh [NUM_RECORDS] [LATENCY_RECORDS] [LATENCY_RATE]
# Env: VLTAVA_BIN (default: $CARGO_TARGET_DIR/release/vltava), RUNS (default 3), PYTHON (a python
#      with grpcio for the OTLP sink; default the venv `make test-python` builds,
#      $HOME/.cache/vltava-py-venv/bin/python).
# The figures in docs/benchmarks.md ("Gateway and tracing") come from this script.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5000000}
LAT_N=${2:-100000}
LAT_RATE=${3:-10000}
RUNS=${RUNS:-3}
BIN="${VLTAVA_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/vltava-target}/release/vltava}"
PYTHON=${PYTHON:-$HOME/.cache/vltava-py-venv/bin/python}
[ -x "$BIN" ] || { echo "build it first: make release (or set VLTAVA_BIN)" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq is needed" >&2; exit 1; }
export RUST_LOG=${RUST_LOG:-warn}
HZ=$(getconf CLK_TCK)
DATA=$(mktemp -d -t vltava-bench-gateway.XXXXXX)
# shellcheck source=deploy/lib-cluster.sh
. deploy/lib-cluster.sh
SINK_PID=""

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  cluster_stop
  [ -z "$SINK_PID" ] || kill "$SINK_PID" 2>/dev/null || true
  rm -rf "$DATA"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; } # utime + stime
# "role pid" of every process of the running cluster.
procs() { jq -r '.processes[] | "\(.role) \(.pid)"' "$CLUSTER_DIR/cluster.json"; }
role_ticks() { # role -> total ticks of that role's processes
  local role pid total=0
  while read -r role pid; do [ "$role" = "$1" ] && total=$((total + $(ticks "$pid"))); done < <(procs)
  echo "$total"
}

create() { # topic
  "$BIN" topic create "$1" --partitions 6 --replication-factor 1 --server "$SERVER" >/dev/null
  for _ in $(seq 100); do
    [ "$("$BIN" topic describe "$1" --json --server "$SERVER" | jq '[.partitions[] | select(.leader < 0)] | length')" = 0 ] && return
    sleep 0.1
  done
  echo "topic $1 has partitions without a leader after 10 s" >&2
  exit 1
}

RESULTS="$DATA/results.tsv"
: >"$RESULTS"
# One perf run; prints its JSON and the CPU per role, and appends a row to the table.
run() { # label perf-args...
  local label=$1
  shift
  local gw0 br0 t0 out json wall gw br
  gw0=$(role_ticks gateway)
  br0=$(role_ticks broker)
  t0=$(date +%s%N)
  out=$("$BIN" perf "$@" --json --server "$SERVER" 2>"$DATA/perf.err" | tail -n 1) ||
    { echo "perf $* failed:" >&2; tail -n 5 "$DATA/perf.err" >&2; exit 1; }
  wall=$(echo "($(date +%s%N) - $t0) / 1000000000" | bc -l)
  gw=$(echo "($(role_ticks gateway) - $gw0) / $HZ / $wall" | bc -l)
  br=$(echo "($(role_ticks broker) - $br0) / $HZ / $wall" | bc -l)
  json=$out
  printf '%-28s %s\n' "$label" "$json"
  printf '%-28s cpu: gateway %.2f, brokers %.2f cores over %.1f s\n' "" "$gw" "$br" "$wall"
  echo "$json" | jq -r --arg run "$label" --arg gw "$(printf %.2f "$gw")" --arg br "$(printf %.2f "$br")" \
    '[$run, .records, (.records_per_sec | round), (.mb_per_sec * 100 | round / 100),
      (.latency_ms.p50 // "-"), (.latency_ms.p99 // "-"), (.latency_ms.max // "-"), $gw, $br] | @tsv' >>"$RESULTS"
}

echo "== $(date -u +%FT%TZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $BIN"
echo "== git: $(git rev-parse --short HEAD 2>/dev/null || echo '?'), binary built $(date -u -r "$BIN" +%FT%TZ)"
cluster_start "$DATA/a" --controllers 1 --brokers 3 --base-port 0
echo "== cluster: 1 controller, 3 brokers, gateway $SERVER; $N records of 100 B, 6 partitions, RF 1, acks=1"
for i in $(seq "$RUNS"); do
  for mode in direct gateway; do
    flag=(); [ "$mode" = gateway ] && flag=(--via-gateway)
    create "t-$mode-$i"
    run "produce $mode #$i" produce --topic "t-$mode-$i" --num-records "$N" --record-size 100 --acks 1 "${flag[@]}"
  done
done
for i in $(seq "$RUNS"); do
  for mode in direct gateway; do
    flag=(); [ "$mode" = gateway ] && flag=(--via-gateway)
    run "consume $mode #$i" consume --topic "t-$mode-$i" --num-records "$N" "${flag[@]}"
  done
done
for mode in direct gateway; do
  flag=(); [ "$mode" = gateway ] && flag=(--via-gateway)
  create "lat-$mode"
  run "latency $mode @${LAT_RATE}/s" produce --topic "lat-$mode" --num-records "$LAT_N" --record-size 100 --acks 1 \
    --throughput "$LAT_RATE" --linger-ms 0 "${flag[@]}"
done
cluster_stop

if [ -x "$PYTHON" ] && "$PYTHON" -c 'import grpc' 2>/dev/null; then
  SINK_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$PYTHON" deploy/otlp-sink.py "$SINK_PORT" >"$DATA/sink.log" 2>&1 &
  SINK_PID=$!
  sleep 1
  for export in off on; do
    if [ "$export" = on ]; then
      OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$SINK_PORT" cluster_start "$DATA/$export" --controllers 1 --brokers 3 --base-port 0
    else
      cluster_start "$DATA/$export" --controllers 1 --brokers 3 --base-port 0
    fi
    echo "== tracing export $export (sink on :$SINK_PORT), through the gateway $SERVER"
    for i in $(seq "$RUNS"); do
      create "trace-$i"
      run "produce gateway, export $export #$i" produce --topic "trace-$i" --num-records "$N" --record-size 100 \
        --acks 1 --via-gateway
    done
    cluster_stop
  done
  kill -TERM "$SINK_PID" 2>/dev/null || true # it prints its totals as it stops
  for _ in $(seq 50); do kill -0 "$SINK_PID" 2>/dev/null || break; sleep 0.1; done
  SINK_PID=""
  echo "== the OTLP sink received: $(tail -n 1 "$DATA/sink.log") (span exports from the export-on cluster)"
else
  echo "== tracing overhead skipped: no python with grpcio at $PYTHON (run make test-python once)"
fi

echo "== results (records/s and MB/s as perf reports them; latency in ms, send to acknowledgement for"
echo "   produce, poll wait for consume; cpu in cores over the run)"
{
  printf 'run\trecords\trecords/s\tMB/s\tp50\tp99\tmax\tcpu gateway\tcpu brokers\n'
  cat "$RESULTS"
} | column -t -s $'\t'
