#!/usr/bin/env bash
# The chaos smoke of `make test` (see docs/reliability.md): short vltava-chaos runs that put every
# kind of fault on the debug build and must find nothing, then a run on a build that breaks
# acks=all on purpose (feature unsafe-early-ack), which must report lost writes: the proof that a
# clean run means something. Needs root (network namespaces, nftables, tmpfs), as CI has.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vltava-target}"
out="${CHAOS_OUT:-$CARGO_TARGET_DIR/chaos-smoke}"
duration="${CHAOS_DURATION:-50s}"
rm -rf "$out"

# The build that acknowledges before replicating: built, set aside, then the normal one again
# (both stay cached, so this costs two links).
cargo build -q -p vltava-cli --features unsafe-early-ack
cp "$CARGO_TARGET_DIR/debug/vltava" "$CARGO_TARGET_DIR/debug/vltava-unsafe-early-ack"
cargo build -q -p vltava-cli -p vltava-chaos
chaos="$CARGO_TARGET_DIR/debug/vltava-chaos"

echo "== correct build: every kind of fault, nothing may be found"
# Hanging transactions (read_committed stuck below the high watermark after a partition moved the
# transaction coordinator) are an open finding of docs/reliability.md (seeds 2, 30, 35): reported,
# not yet failing the smoke. Remove the flag once they are fixed.
known="--tolerate-hanging-transactions"
"$chaos" --seed 1 --duration "$duration" --faults kill,pause,isolate,split --out "$out" $known
"$chaos" --seed 2 --duration "$duration" --faults bridge,one-way,lossy,disk-full --out "$out" $known

echo "== broken build (acks=all answered before replication): lost writes must be found"
for seed in 100 101 102; do
    if "$chaos" --seed "$seed" --duration 60s --faults kill --out "$out/broken" \
        --vltava "$CARGO_TARGET_DIR/debug/vltava-unsafe-early-ack"; then
        echo "seed $seed: the broken build came through clean; trying another seed"
        continue
    fi
    if python3 - "$out/broken/seed-$seed/report.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
lost = report["verdict"]["counts"]["lost"]
print(f"the checker reported {lost} lost write(s) on the broken build")
sys.exit(0 if lost > 0 else 1)
PY
    then
        echo "chaos smoke passed"
        exit 0
    fi
done
echo "FAIL: the checker did not report lost writes on a build that acknowledges before replicating" >&2
exit 1
