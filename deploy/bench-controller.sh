#!/usr/bin/env bash
# Benchmarks the Raft controller quorum on a release `vltava local-cluster` (3 controllers,
# 3 brokers, 1 gateway as separate processes on this machine):
#   1. metadata throughput: `vltava perf metadata` creating TOPICS one-partition topics (RF 3)
#      with 1 and then 16 creations in flight (and deleting them);
#   2. failover: kill -9 a broker that leads partitions of a fresh 30-partition RF 3 topic and time
#      how long until `vltava topic describe` shows none of them led by it (3 runs, 3 brokers; the
#      killed broker is restarted with its command from cluster.json between runs);
#   3. controller memory: VmRSS of each controller before and after creating MEM_TOPICS topics of
#      MEM_PARTITIONS partitions (RF 3).
# Usage: deploy/bench-controller.sh [TOPICS] [MEM_TOPICS] [MEM_PARTITIONS]
# Env: VLTAVA_BIN (default: $CARGO_TARGET_DIR/release/vltava), KEEP_DATA=1 keeps the data directory.
# The figures in docs/benchmarks.md ("Controller quorum") come from this script.
set -euo pipefail
cd "$(dirname "$0")/.."
TOPICS=${1:-2000}
MEM_TOPICS=${2:-100}
MEM_PARTITIONS=${3:-100}
FAILOVER_RUNS=3
FAILOVER_PARTITIONS=30
BIN="${VLTAVA_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/vltava-target}/release/vltava}"
[ -x "$BIN" ] || { echo "build it first: make release (or set VLTAVA_BIN)" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq is needed" >&2; exit 1; }
export RUST_LOG=${RUST_LOG:-warn} # every process, including restarted brokers (as deploy/perf.sh)

DATA=$(mktemp -d -t vltava-bench-controller.XXXXXX)
# shellcheck source=deploy/lib-cluster.sh
. deploy/lib-cluster.sh
declare -A BROKER_PID=()   # broker id -> current pid (updated when the script restarts one)
RESTARTED=()               # pids of brokers this script started (not children of local-cluster)

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for pid in "${RESTARTED[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  cluster_stop
  for pid in "${RESTARTED[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  cluster_reap "$DATA" # nothing of the cluster may survive, restarted brokers included
  if [ "${KEEP_DATA:-0}" = 1 ]; then echo "data kept in $DATA" >&2; else rm -rf "$DATA"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now_ms() { date +%s%3N; }

# A base port whose next 7 ports (gateway, 3 controllers, 3 brokers) are free, below the kernel's
# ephemeral range so that the CLI's own connections never take a port a restarted broker needs.
pick_base_port() {
  python3 - <<'EOF'
import random, socket
for _ in range(200):
    base = random.randrange(20000, 32000)
    try:
        socks = []
        for p in range(base, base + 7):
            s = socket.socket(); s.bind(("127.0.0.1", p)); socks.append(s)
        print(base)
        break
    except OSError:
        pass
    finally:
        for s in socks: s.close()
EOF
}

BASE_PORT=$(pick_base_port)
echo "== $(date -u +%FT%TZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $BIN"
echo "== local-cluster: 3 controllers, 3 brokers, ports $BASE_PORT-$((BASE_PORT + 6)), data in $DATA"
cluster_start "$DATA" --controllers 3 --brokers 3 --base-port "$BASE_PORT"
export VLTAVA_SERVER=$SERVER
CLUSTER_JSON="$DATA/cluster.json"
for id in 1 2 3; do
  BROKER_PID[$id]=$(jq -r --argjson id "$id" '.processes[] | select(.role=="broker" and .id==$id) | .pid' "$CLUSTER_JSON")
done
CONTROLLER_PIDS=$(jq -r '.processes[] | select(.role=="controller") | "\(.id):\(.pid)"' "$CLUSTER_JSON")
echo "gateway $VLTAVA_SERVER; controllers (id:pid) $(echo $CONTROLLER_PIDS); brokers (id:pid) 1:${BROKER_PID[1]} 2:${BROKER_PID[2]} 3:${BROKER_PID[3]}"
"$BIN" cluster describe --json | jq -c '{leader_id, term, controllers: [.controllers[] | {id, leader}], brokers: [.brokers[] | {id, state}]}'
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; } # KiB
print_rss() {
  for entry in $CONTROLLER_PIDS; do
    local id=${entry%%:*} pid=${entry#*:} kib
    kib=$(rss "$pid")
    printf '  controller %s (pid %s): VmRSS %s KiB (%.1f MiB)\n' "$id" "$pid" "$kib" "$(echo "$kib / 1024" | bc -l)"
  done
}
echo "== controller memory at start (no topics)"
print_rss

# ---------------------------------------------------------------------------------------------
for C in 1 16; do
  echo "== perf metadata: $TOPICS topics, 1 partition, RF 3, concurrency $C"
  "$BIN" perf metadata --topics "$TOPICS" --concurrency "$C" --partitions 1 --replication-factor 3 --json | tail -n 1
done

# ---------------------------------------------------------------------------------------------
describe() { "$BIN" topic describe "$1" --json 2>/dev/null; }
broker_state() { # id -> "alive:EPOCH" / "fenced:EPOCH" / ""
  "$BIN" cluster describe --json 2>/dev/null |
    jq -r --argjson id "$1" '.brokers[] | select(.id==$id) | "\(.state):\(.epoch)"' || true
}

echo "== failover: kill -9 a partition leader, poll topic describe every 50 ms ($FAILOVER_RUNS runs)"
KILLED=()
FAILOVER_MS=()
FAILOVER_TOPICS=()
for run in $(seq "$FAILOVER_RUNS"); do
  TOPIC="failover-$run-$RANDOM"
  # A fresh topic each run: every replica starts in the ISR (a restarted broker does not rejoin
  # the ISR of existing partitions yet), so the leadership of each partition can move.
  "$BIN" topic create "$TOPIC" --partitions "$FAILOVER_PARTITIONS" --replication-factor 3 >/dev/null
  for _ in $(seq 200); do
    [ "$(describe "$TOPIC" | jq '[.partitions[] | select(.leader < 0)] | length')" = 0 ] && break
    sleep 0.05
  done
  # The broker not killed before that leads the most partitions.
  VICTIM=$(describe "$TOPIC" | jq -r --argjson killed "[${KILLED[*]/%/,} 0]" \
    '[.partitions[].leader | select(. > 0 and (. as $l | $killed | index($l) | not))]
     | group_by(.) | max_by(length) | .[0] // empty')
  [ -n "$VICTIM" ] || { echo "no unkilled broker leads a partition of $TOPIC" >&2; exit 1; }
  LED=$(describe "$TOPIC" | jq --argjson b "$VICTIM" '[.partitions[] | select(.leader==$b)] | length')
  PID=${BROKER_PID[$VICTIM]}
  START=$(now_ms)
  kill -KILL "$PID"
  POLLS=0
  while :; do
    POLLS=$((POLLS + 1))
    ASKED=$(now_ms)
    J=$(describe "$TOPIC" || true)
    if [ -n "$J" ] && [ "$(echo "$J" | jq --argjson b "$VICTIM" '[.partitions[] | select(.leader==$b)] | length')" = 0 ]; then
      break
    fi
    if [ $((ASKED - START)) -gt 60000 ]; then echo "leadership did not move within 60 s" >&2; exit 1; fi
    sleep 0.05
  done
  ELAPSED=$(($(now_ms) - START))
  LEADERLESS=$(echo "$J" | jq '[.partitions[] | select(.leader < 0)] | length')
  FAILOVER_MS+=("$ELAPSED")
  KILLED+=("$VICTIM")
  FAILOVER_TOPICS+=("$TOPIC")
  # ELAPSED is when the describe that saw it answered; that call started at ASKED.
  echo "run $run: broker $VICTIM (pid $PID) led $LED/$FAILOVER_PARTITIONS partitions; none led by it after ${ELAPSED} ms" \
    "(seen by poll $POLLS, started at $((ASKED - START)) ms; $LEADERLESS partitions left without a leader)"

  # Restart it with the command local-cluster used, and wait until the controllers see it alive again.
  mapfile -t CMD < <(jq -r --argjson id "$VICTIM" '.processes[] | select(.role=="broker" and .id==$id) | .command[]' "$CLUSTER_JSON")
  LOG=$(jq -r --argjson id "$VICTIM" '.processes[] | select(.role=="broker" and .id==$id) | .log' "$CLUSTER_JSON")
  for _ in $(seq 200); do [[ "$(broker_state "$VICTIM")" == fenced:* ]] && break; sleep 0.05; done
  RESTART=$(now_ms)
  "${CMD[@]}" >>"$LOG" 2>&1 </dev/null &
  NEW_PID=$!
  RESTARTED+=("$NEW_PID")
  BROKER_PID[$VICTIM]=$NEW_PID
  for _ in $(seq 600); do
    [[ "$(broker_state "$VICTIM")" == alive:* ]] && break
    kill -0 "$NEW_PID" 2>/dev/null || { echo "restarted broker $VICTIM exited; see $LOG" >&2; exit 1; }
    sleep 0.1
  done
  [[ "$(broker_state "$VICTIM")" == alive:* ]] || { echo "broker $VICTIM not alive 60 s after its restart" >&2; exit 1; }
  echo "       broker $VICTIM restarted (pid $NEW_PID), alive again after $(($(now_ms) - RESTART)) ms"
done
echo "failover times (ms): ${FAILOVER_MS[*]}"

# ---------------------------------------------------------------------------------------------
partition_total() { "$BIN" topic list --json | jq '[.[].partitions] | add // 0'; }
# Only the memory test's topics should exist while it measures.
for t in "${FAILOVER_TOPICS[@]}"; do "$BIN" topic delete "$t" >/dev/null; done
sleep 2
echo "== controller memory: before creating $MEM_TOPICS topics x $MEM_PARTITIONS partitions (RF 3); $(partition_total) partitions exist"
print_rss
"$BIN" perf metadata --topics "$MEM_TOPICS" --concurrency 4 --partitions "$MEM_PARTITIONS" --replication-factor 3 \
  --keep --json | tail -n 1
sleep 5
echo "== controller memory: after; $(partition_total) partitions exist"
print_rss
"$BIN" cluster describe --json | jq -c '{leader_id, term, commit_index, applied_index}'
echo "== done (load average $(cut -d' ' -f1-3 /proc/loadavg)); stopping the cluster"
