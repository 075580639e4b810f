#!/usr/bin/env bash
# Benchmarks replicated produce on a release `vltava local-cluster` (1 controller, 3 brokers,
# 1 gateway as separate processes on this machine), for issue 4:
#   1. throughput: `vltava perf produce` of NUM_RECORDS records of 100 bytes to a fresh RF 3 topic
#      (min.insync.replicas=2), acks=1 and then acks=all, for each producer configuration in
#      CONFIGS (partitions:batch.size:linger.ms);
#   2. latency: acks=all and acks=1 at a fixed LATENCY_RATE records/s for LATENCY_RECORDS records
#      (RF 3), for each configuration in LATENCY_RUNS (acks:partitions:batch.size:linger.ms).
# For every run it prints the `--json` summary line, the CPU each process used (seconds of CPU per
# second of wall time, from /proc/PID/stat; 1.00 = one core busy) and how busy the whole machine
# was, the ISR of the topic afterwards and whether every replica holds every record, and any
# WARN/ERROR lines the brokers logged. A table of all runs comes last.
# Usage: deploy/bench-replication.sh [NUM_RECORDS] [LATENCY_RECORDS] [LATENCY_RATE]
# Env: VLTAVA_BIN (default: $CARGO_TARGET_DIR/release/vltava), KEEP_DATA=1 keeps the data directory,
#      CONFIGS="P:B:L ..." (default "6:16384:5 6:262144:5"; e.g. a sweep over partitions, batch
#      sizes and lingers), LATENCY_RUNS="A:P:B:L ..." (default "all:6:16384:5 1:6:16384:5
#      all:6:16384:0 1:6:16384:0"), THREADS=0 skips the busiest-threads sample (one second, from
#      /proc/PID/task/*/stat) taken 3 s into every throughput run.
# NUM_RECORDS defaults to 10,000,000 (about 10 s a run here); 2,000,000 finish in under 2 s.
# The figures in docs/benchmarks.md ("Replication (issue 4)") come from this script.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000000}
LAT_N=${2:-300000}
LAT_RATE=${3:-10000}
SIZE=100
RF=3
MIN_ISR=2
CONFIGS=${CONFIGS:-"6:16384:5 6:262144:5"}
LATENCY_RUNS=${LATENCY_RUNS:-"all:6:16384:5 1:6:16384:5 all:6:16384:0 1:6:16384:0"}
BIN="${VLTAVA_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/vltava-target}/release/vltava}"
[ -x "$BIN" ] || { echo "build it first: make release (or set VLTAVA_BIN)" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq is needed" >&2; exit 1; }
export RUST_LOG=${RUST_LOG:-warn} # the cluster's processes inherit it (as deploy/perf.sh)
HZ=$(getconf CLK_TCK)

DATA=$(mktemp -d -t vltava-bench-replication.XXXXXX)
# shellcheck source=deploy/lib-cluster.sh
. deploy/lib-cluster.sh
PERF_PID=""

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$PERF_PID" ]; then
    kill -TERM "$PERF_PID" 2>/dev/null || true
    wait "$PERF_PID" 2>/dev/null || true
  fi
  cluster_stop # nothing of the cluster may survive
  if [ "${KEEP_DATA:-0}" = 1 ]; then echo "data kept in $DATA" >&2; else rm -rf "$DATA"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== $(date -u +%FT%TZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $BIN"
echo "== git: $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(git status --porcelain 2>/dev/null | wc -l) changed files in the tree;" \
  "binary built $(date -u -r "$BIN" +%FT%TZ)"
echo "== local-cluster: 1 controller, 3 brokers, free ports, RUST_LOG=$RUST_LOG, data in $DATA"
cluster_start "$DATA" --controllers 1 --brokers 3 --base-port 0
CLUSTER_JSON="$DATA/cluster.json"
# role-id:pid of every server process, e.g. "broker-1:1234".
mapfile -t PROCS < <(jq -r '.processes[] | "\(.role)-\(.id):\(.pid)"' "$CLUSTER_JSON")
echo "gateway $SERVER; processes ${PROCS[*]}"
"$BIN" cluster describe --json --server "$SERVER" | jq -c '{leader_id, brokers: [.brokers[] | {id, address, state}]}'

# ---------------------------------------------------------------------------------------------
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; } # utime + stime
machine() { awk '/^cpu / {print $2+$3+$4+$5+$6+$7+$8+$9, $5+$6}' /proc/stat; } # total, idle+iowait
log_lines() { # WARN/ERROR lines in the brokers' logs so far
  cat "$DATA"/broker-*/process.log 2>/dev/null | grep -cE 'WARN|ERROR' || true
}

create_topic() { # name partitions
  "$BIN" topic create "$1" --partitions "$2" --replication-factor "$RF" \
    --config "min.insync.replicas=$MIN_ISR" --server "$SERVER" >/dev/null
  for _ in $(seq 200); do # every partition led and with its whole ISR
    [ "$("$BIN" topic describe "$1" --json --server "$SERVER" 2>/dev/null |
      jq --argjson rf "$RF" '[.partitions[] | select(.leader < 0 or (.isr | length) < $rf)] | length' 2>/dev/null)" = 0 ] && return
    sleep 0.1
  done
  echo "topic $1: partitions without a leader or a full ISR after 20 s" >&2
  exit 1
}

# After a run: the ISR of each partition, and whether every replica holds every record (sizes of
# each broker's copy of the topic, from the partition directories `<topic>-<partition>`).
check_topic() { # name records
  local d hw t0 waited polls=0
  t0=$(date +%s%N)
  for _ in $(seq 100); do # the high watermark can trail the last acks=1 acknowledgement
    polls=$((polls + 1))
    d=$("$BIN" topic describe "$1" --json --server "$SERVER")
    hw=$(echo "$d" | jq '[.partitions[].high_watermark] | add')
    [ "$hw" -ge "$2" ] && break
    sleep 0.1
  done
  waited=$((($(date +%s%N) - t0) / 1000000))
  echo "  isr: $(echo "$d" | jq -c '[.partitions[] | "p\(.partition) leader \(.leader) isr \(.isr | join(","))"]')"
  echo "  high watermarks sum to $hw (records acknowledged: $2; seen by describe $polls, ${waited} ms after the run)"
  local sizes=""
  for b in "$DATA"/broker-*; do
    sizes+="$(basename "$b") $(find "$b/data" -maxdepth 2 -type d -name "$1-*" -print0 2>/dev/null |
      xargs -0 -r du -scb 2>/dev/null | tail -n 1 | cut -f1) B; "
  done
  echo "  bytes on disk per broker: $sizes"
}

# The busiest threads of the given name:pid processes over one second, from /proc/PID/task/*/stat.
thread_top() {
  python3 - "$HZ" "$@" <<'PY'
import os, sys, time
hz = int(sys.argv[1])
procs = [a.rsplit(":", 1) for a in sys.argv[2:]]
def snap():
    out = {}
    for name, pid in procs:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                s = open(f"/proc/{pid}/task/{tid}/stat").read()
            except OSError:
                continue
            comm = s[s.index("(") + 1:s.rindex(")")]
            f = s[s.rindex(")") + 2:].split()
            out[(name, tid, comm)] = int(f[11]) + int(f[12])
    return out
a = snap(); t = time.time(); time.sleep(1); b = snap(); dt = time.time() - t
rows = sorted(((b[k] - a.get(k, 0)) / hz / dt, k) for k in b)
rows.reverse()
per = {}
for c, (name, _, _) in rows:
    per[name] = per.get(name, 0) + c
print("    per process: " + ", ".join(f"{n} {c:.2f}" for n, c in sorted(per.items())))
for c, (name, tid, comm) in rows[:10]:
    if c > 0:
        print(f"    {c:5.2f}  {name:<13} {comm} ({tid})")
PY
}

RESULTS="$DATA/results.tsv"
: >"$RESULTS"
# One `vltava perf produce` run against a fresh topic. Prints its JSON line and the CPU figures.
run_produce() { # label partitions batch linger acks records rate
  local label=$1 parts=$2 batch=$3 linger=$4 acks=$5 records=$6 rate=$7
  local topic="bench-$label-$acks-$RANDOM"
  create_topic "$topic" "$parts"
  local out="$DATA/$topic.json" err="$DATA/$topic.err"
  echo "== $label: $records records of $SIZE B, acks=$acks, RF $RF, $parts partitions, batch.size $batch," \
    "linger.ms $linger, throughput ${rate}"
  local -A before=()
  local p logs0 m0 m1 t0 t1
  for p in "${PROCS[@]}"; do before[$p]=$(ticks "${p#*:}"); done
  logs0=$(log_lines)
  read -r -a m0 < <(machine)
  t0=$(date +%s%N)
  "$BIN" perf produce --topic "$topic" --num-records "$records" --record-size "$SIZE" --acks "$acks" \
    --throughput "$rate" --batch-size "$batch" --linger-ms "$linger" --json --server "$SERVER" \
    >"$out" 2>"$err" &
  PERF_PID=$!
  local perf_ticks=0 sampled=0 t
  while kill -0 "$PERF_PID" 2>/dev/null; do
    t=$(ticks "$PERF_PID") # the last value read before it exits (its exit loses little)
    [ "$t" -gt "$perf_ticks" ] && perf_ticks=$t
    if [ "${THREADS:-1}" = 1 ] && [ "$sampled" = 0 ] && [ $(($(date +%s%N) - t0)) -ge 3000000000 ]; then
      sampled=1
      echo "  busiest threads over one second from $(((($(date +%s%N) - t0)) / 1000000)) ms into the run (cores):"
      thread_top "${PROCS[@]}" "producer:$PERF_PID" || true
    fi
    sleep 0.1
  done
  local status=0
  wait "$PERF_PID" || status=$?
  PERF_PID=""
  t1=$(date +%s%N)
  read -r -a m1 < <(machine)
  if [ "$status" != 0 ] || ! tail -n 1 "$out" | jq -e . >/dev/null 2>&1; then
    echo "perf produce failed (exit $status):" >&2
    tail -n 5 "$err" >&2
    exit 1
  fi
  local json wall cpu_line="" name
  json=$(tail -n 1 "$out")
  echo "$json"
  wall=$(echo "($t1 - $t0) / 1000000000" | bc -l)
  local -A cpu=()
  for p in "${PROCS[@]}"; do
    cpu[$p]=$(echo "($(ticks "${p#*:}") - ${before[$p]}) / $HZ / $wall" | bc -l)
    name=${p%%:*}
    cpu_line+="$(printf '%s %.2f, ' "$name" "${cpu[$p]}")"
  done
  cpu[producer]=$(echo "$perf_ticks / $HZ / $wall" | bc -l)
  local busy ours=${cpu[producer]} others
  busy=$(echo "(1 - (${m1[1]} - ${m0[1]}) / (${m1[0]} - ${m0[0]})) * 100" | bc -l)
  for p in "${PROCS[@]}"; do ours=$(echo "$ours + ${cpu[$p]}" | bc -l); done
  others=$(echo "$busy * $(nproc) / 100 - $ours" | bc -l)
  printf '  cpu (cores, over %.1f s): %sproducer %.2f; machine %.0f%% busy, of which other processes (this script included) %.2f cores; load average %s\n' \
    "$wall" "$cpu_line" "${cpu[producer]}" "$busy" "$others" "$(cut -d' ' -f1-3 /proc/loadavg)"
  local new_logs=$(($(log_lines) - logs0))
  if [ "$new_logs" -gt 0 ]; then
    echo "  the brokers logged $new_logs WARN/ERROR lines during the run; the last ones:"
    cat "$DATA"/broker-*/process.log | grep -E 'WARN|ERROR' | tail -n 5 | cut -c1-300 | sed 's/^/    /'
  fi
  check_topic "$topic" "$(echo "$json" | jq .records)"
  local brokers=0
  for p in "${PROCS[@]}"; do [[ $p == broker-* ]] && brokers=$(echo "$brokers + ${cpu[$p]}" | bc -l); done
  echo "$json" | jq -r --arg run "$label" --arg parts "$parts" --arg batch "$batch" --arg linger "$linger" \
    --arg rate "$rate" --arg brokers "$(printf %.2f "$brokers")" --arg producer "$(printf %.2f "${cpu[producer]}")" \
    --arg busy "$(printf %.0f "$busy")" --arg others "$(printf %.2f "$others")" \
    '[$run, $parts, $batch, $linger, .acks, $rate, .records, .failed, (.records_per_sec | round),
      (.mb_per_sec * 100 | round / 100), .latency_ms.p50, .latency_ms.p99, .latency_ms.p999, .latency_ms.max,
      $brokers, $producer, $busy, $others] | @tsv' >>"$RESULTS"
  # Free the disk for the next run (3 copies of each record).
  "$BIN" topic delete "$topic" --server "$SERVER" >/dev/null
}

# ---------------------------------------------------------------------------------------------
for c in $CONFIGS; do
  IFS=: read -r P B L <<<"$c"
  for ACKS in 1 all; do
    run_produce throughput "$P" "$B" "$L" "$ACKS" "$N" -1
  done
done
for c in $LATENCY_RUNS; do
  IFS=: read -r ACKS P B L <<<"$c"
  run_produce latency "$P" "$B" "$L" "$ACKS" "$LAT_N" "$LAT_RATE"
done

echo "== results (records/s and MB/s (MiB of values) as perf produce reports them; latency in ms from send to"
echo "   acknowledgement; cpu in cores: the 3 brokers together, the producer; machine = % of all cores busy;"
echo "   others = cores used by every other process on the machine, this script's polling included)"
{
  printf 'run\tpartitions\tbatch.size\tlinger.ms\tacks\ttarget/s\trecords\tfailed\trecords/s\tMB/s\tp50\tp99\tp99.9\tmax\tcpu brokers\tcpu producer\tmachine %%\tcpu others\n'
  cat "$RESULTS"
} | column -t -s $'\t'
COUNTS=$(for f in "$DATA"/broker-*/process.log "$DATA"/controller-*/process.log "$DATA"/gateway/process.log; do
  grep -cE 'WARN|ERROR' "$f" || true
done | paste -sd' ')
echo "== WARN/ERROR lines in the logs of brokers 1-3, the controller, the gateway: $COUNTS"
echo "== done (load average $(cut -d' ' -f1-3 /proc/loadavg)); stopping the cluster"
