#!/usr/bin/env bash
# Kafka clients against a release `vltava dev`, beside `vltava perf` over gRPC in the same run:
# 100-byte records, 6 partitions, acks=all (one replica), twice each, alternating.
# - produce: `vltava perf produce` (gRPC, the SDK) vs librdkafka through `kcat -P` reading the
#   records from a file (linger.ms=5, batch.size=256 KiB, idempotence on, as the SDK's defaults);
# - consume: `vltava perf consume` vs `kcat -C` from the beginning to the end;
# - the broker's CPU (user + system, from /proc) per million records for each.
# The figures in docs/benchmarks.md come from this script.
# Usage: deploy/perf-kafka.sh [NUM_RECORDS]   Env: VLTAVA_BIN (default: the release binary).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5000000}
BIN="${VLTAVA_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/vltava-target}/release/vltava}"
[ -x "$BIN" ] || { echo "build it first: make release" >&2; exit 1; }
command -v kcat >/dev/null || { echo "kcat is missing: deploy/install-test-deps.sh" >&2; exit 1; }
DATA=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ADDR="127.0.0.1:$(free_port)"
KAFKA="127.0.0.1:$(free_port)"
RUST_LOG=warn "$BIN" dev --listen "$ADDR" --kafka-listen "$KAFKA" --gateway-listen off --data-dir "$DATA/dev" \
  2>"$DATA/server.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 100); do grep -q "serving on" "$DATA/server.log" 2>/dev/null && break; sleep 0.1; done
export VLTAVA_SERVER="$ADDR"
HZ=$(getconf CLK_TCK)
cpu() { awk -v hz="$HZ" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$SERVER/stat"; }
# Seconds and broker CPU seconds of a command: "SECONDS CPU".
measure() {
  local c0 t0 t1 c1
  c0=$(cpu); t0=$(date +%s.%N)
  "$@" >/dev/null
  t1=$(date +%s.%N); c1=$(cpu)
  awk -v a="$t0" -v b="$t1" -v c="$c0" -v d="$c1" 'BEGIN { printf "%.2f %.2f\n", b - a, d - c }'
}
report() { # NAME SECONDS CPU
  awk -v name="$1" -v s="$2" -v c="$3" -v n="$N" \
    'BEGIN { printf "%-22s %10.0f records/s %7.1f MB/s   broker CPU %.2f s per million records\n", name, n / s, n * 100 / s / 1e6, c / n * 1e6 }'
}
python3 - "$N" >"$DATA/records.txt" <<'PY'
import sys
line = "x" * 100 + "\n"  # one 100-byte value per line (kcat -l drops the newline)
sys.stdout.write(line * int(sys.argv[1]))
PY
for round in 1 2; do
  for client in grpc kafka; do
    TOPIC="perf-$client-$round"
    "$BIN" topic create "$TOPIC" --partitions 6 >/dev/null
    if [ "$client" = grpc ]; then
      read -r s c < <(measure "$BIN" perf produce --topic "$TOPIC" --num-records "$N" --record-size 100 --acks all)
      report "produce gRPC (SDK)" "$s" "$c"
      read -r s c < <(measure "$BIN" perf consume --topic "$TOPIC" --num-records "$N")
      report "consume gRPC (SDK)" "$s" "$c"
    else
      read -r s c < <(measure kcat -b "$KAFKA" -P -t "$TOPIC" -l "$DATA/records.txt" -X acks=all \
        -X enable.idempotence=true -X linger.ms=5 -X batch.size=262144 -X queue.buffering.max.messages=1000000)
      report "produce Kafka (kcat)" "$s" "$c"
      read -r s c < <(measure kcat -b "$KAFKA" -C -t "$TOPIC" -o beginning -e -q -f '%s\n')
      report "consume Kafka (kcat)" "$s" "$c"
    fi
  done
done
