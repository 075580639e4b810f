#!/usr/bin/env bash
# The Python example as a test (`make test-python`): a venv with requirements.txt, stubs generated
# from proto/, a `vltava local-cluster` on free ports in a temporary directory, then
# test_roundtrip.py and quickstart.py against its gateway. The cluster is always stopped.
#
# Environment:
#   VLTAVA_BIN       the vltava binary (default: $CARGO_TARGET_DIR/debug/vltava; not built here)
#   VLTAVA_PY_VENV   the venv to create or reuse (default: ~/.cache/vltava-py-venv)
#   VLTAVA_PY_BROKERS brokers in the cluster (default: 3; one controller)
#   PYTHON           interpreter that creates the venv (default: python3)
#   VLTAVA_PY_KEEP   set to keep the temporary directory (stubs, cluster data and logs)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vltava-target}"
bin="${VLTAVA_BIN:-$CARGO_TARGET_DIR/debug/vltava}"
venv="${VLTAVA_PY_VENV:-$HOME/.cache/vltava-py-venv}"
python="${PYTHON:-python3}"
brokers="${VLTAVA_PY_BROKERS:-3}"
log() { echo "run-test.sh: $*" >&2; }

if [ ! -x "$bin" ]; then
    log "no vltava binary at $bin: build it first (cargo build --workspace --all-targets) or set VLTAVA_BIN"
    exit 1
fi
start=$SECONDS

# --- the venv -----------------------------------------------------------------------------------
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
    log "creating the venv $venv"
    rm -rf "$venv"
    if ! "$python" -m venv "$venv"; then
        # Debian's system python3 keeps venv (ensurepip) in a separate package.
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            log "installing python3-venv"
            rm -rf "$venv"
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
            "$python" -m venv "$venv"
        else
            log "$python -m venv failed (on Debian/Ubuntu: apt-get install python3-venv)"
            exit 1
        fi
    fi
fi
stamp="$venv/.vltava-requirements.txt"
if ! cmp -s "$here/requirements.txt" "$stamp"; then
    log "installing requirements.txt into $venv"
    "$venv/bin/python" -m pip install --quiet -r "$here/requirements.txt"
    cp "$here/requirements.txt" "$stamp"
fi
py="$venv/bin/python"

# --- stubs and cluster --------------------------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/vltava-py.XXXXXX")"
data="$work/cluster"
launcher=""
runner=""

# Pids of the cluster's processes: every one has its config file under our (unique) data directory
# on its command line. (The same pids as cluster.json lists, even when that was never written.)
cluster_pids() {
    local pid
    for pid in /proc/[0-9]*; do
        pid="${pid#/proc/}"
        { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$data/" && echo "$pid"
    done
    return 0
}

alive() { [ -d "/proc/$1" ] && ! grep -q '^[^ ]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null; }

# Waits up to $1 seconds for the given pids to exit; returns non-zero if some are still alive.
wait_gone() {
    local limit=$(( $1 * 10 )) i pid any
    shift
    for ((i = 0; i < limit; i++)); do
        any=""
        for pid in "$@"; do alive "$pid" && any=1; done
        [ -z "$any" ] && return 0
        sleep 0.1
    done
    return 1
}

cleanup() {
    local rc=$? pids pid
    trap - EXIT INT TERM
    if [ -n "$runner" ] && alive "$runner"; then
        kill -TERM "$runner" 2>/dev/null || true   # timeout passes it on to the Python process
        wait "$runner" 2>/dev/null || true
    fi
    # local-cluster stops its processes on SIGTERM (brokers first, SIGKILL after 10 s each).
    if [ -n "$launcher" ] && alive "$launcher"; then
        kill -TERM "$launcher" 2>/dev/null || true
        wait_gone 60 "$launcher" || { log "local-cluster did not stop in 60 s: SIGKILL"; kill -KILL "$launcher" 2>/dev/null || true; }
        wait "$launcher" 2>/dev/null || true
    fi
    # Whatever is left (local-cluster killed, or startup interrupted): SIGTERM, then SIGKILL.
    pids=()
    for pid in $(cluster_pids | sort -u); do alive "$pid" && pids+=("$pid"); done
    if [ "${#pids[@]}" -gt 0 ]; then
        log "stopping leftover cluster processes: ${pids[*]}"
        kill -TERM "${pids[@]}" 2>/dev/null || true
        wait_gone 10 "${pids[@]}" || kill -KILL "${pids[@]}" 2>/dev/null || true
    fi
    if [ "$rc" != 0 ]; then
        log "FAILED; cluster logs:"
        for f in "$work/local-cluster.err" "$data"/*/process.log; do
            [ -f "$f" ] || continue
            echo "----- tail of $f" >&2
            tail -n 40 "$f" | sed 's/\x1b\[[0-9;]*m//g' >&2   # without terminal colours
        done
    fi
    if [ -n "${VLTAVA_PY_KEEP:-}" ]; then log "kept $work"; else rm -rf "$work"; fi
    [ "$rc" = 0 ] || log "failed after $(( SECONDS - start )) s"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PYTHON="$py" "$here/generate.sh" "$work/stubs"

log "starting vltava local-cluster (1 controller, $brokers brokers) in $data"
mkdir -p "$data"
"$bin" local-cluster --data-dir "$data" --controllers 1 --brokers "$brokers" --base-port 0 \
    </dev/null >"$work/local-cluster.out" 2>"$work/local-cluster.err" &
launcher=$!

# It prints the gateway's address on stdout once every broker is registered (or exits, within its
# own 90 s bound).
deadline=$(( SECONDS + 120 ))
until [ "$(wc -l <"$work/local-cluster.out")" -ge 1 ]; do
    if ! alive "$launcher"; then
        log "local-cluster exited before it was ready"
        exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
        log "local-cluster was not ready within 120 s"
        exit 1
    fi
    sleep 0.2
done
gateway="$(head -n 1 "$work/local-cluster.out")"
log "cluster ready after $(( SECONDS - start )) s; gateway at $gateway"

export VLTAVA_GATEWAY="$gateway" VLTAVA_PB_DIR="$work/stubs"
# In the background and waited for, so that a signal to this script runs the cleanup at once.
bounded() {
    local seconds=$1
    shift
    timeout "$seconds" "$@" </dev/null &
    runner=$!
    wait "$runner"
}
status=0
log "running quickstart.py"
bounded 120 "$py" "$here/quickstart.py" >"$work/quickstart.out" 2>&1 || {
    status=$?
    log "quickstart.py failed ($status):"
    cat "$work/quickstart.out" >&2
}
if [ "$status" = 0 ]; then
    # Its last line is the summary: "python: N passed, N failed".
    bounded 300 "$py" "$here/test_roundtrip.py" || status=$?
    [ "$status" = 124 ] && log "test_roundtrip.py timed out after 300 s"
fi
exit "$status"
