# Sourced by the benchmark scripts (deploy/bench-*.sh): start a `vltava local-cluster` in a
# directory, stop it, and make sure nothing of it survives the script.
#
#   cluster_start DIR [local-cluster arguments...]   # sets CLUSTER_PID, CLUSTER_DIR, SERVER
#   cluster_stop                                     # SIGTERM, 30 s, SIGKILL, then cluster_reap
#   cluster_reap DIR                                 # SIGKILL any process of DIR/cluster.json still running
#
# Needs BIN (the vltava binary) and jq. local-cluster writes its client address (the gateway) on
# stdout, its log to DIR/local-cluster.log and every process's pid to DIR/cluster.json.

CLUSTER_PID=""
CLUSTER_DIR=""
SERVER=""

cluster_start() { # dir [args...]
  local dir=$1
  shift
  mkdir -p "$dir"
  "$BIN" local-cluster --data-dir "$dir" "$@" >"$dir/address" 2>"$dir/local-cluster.log" &
  CLUSTER_PID=$!
  CLUSTER_DIR=$dir
  for _ in $(seq 1200); do
    [ -s "$dir/address" ] && break
    kill -0 "$CLUSTER_PID" 2>/dev/null || { echo "local-cluster exited:" >&2; tail -n 20 "$dir/local-cluster.log" >&2; exit 1; }
    sleep 0.1
  done
  [ -s "$dir/address" ] || { echo "local-cluster did not start in 120 s" >&2; exit 1; }
  SERVER=$(head -n 1 "$dir/address")
}

cluster_reap() { # dir
  [ -f "$1/cluster.json" ] || return 0
  local pid
  for pid in $(jq -r '.processes[].pid' "$1/cluster.json"); do
    if kill -0 "$pid" 2>/dev/null && grep -q vltava "/proc/$pid/cmdline" 2>/dev/null; then
      echo "warning: process $pid was still running; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
}

cluster_stop() {
  if [ -n "$CLUSTER_PID" ]; then
    kill -TERM "$CLUSTER_PID" 2>/dev/null || true
    for _ in $(seq 300); do kill -0 "$CLUSTER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$CLUSTER_PID" 2>/dev/null || true
    wait "$CLUSTER_PID" 2>/dev/null || true
    CLUSTER_PID=""
  fi
  [ -z "$CLUSTER_DIR" ] || cluster_reap "$CLUSTER_DIR"
}
