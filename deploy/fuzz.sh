#!/usr/bin/env bash
# The cargo-fuzz targets in fuzz/ (see docs/reliability.md).
#
#   deploy/fuzz.sh smoke [RUNS]       every target for RUNS inputs (default 20000, libFuzzer seed 1)
#                                     after replaying its committed inputs: what `make test` runs
#   deploy/fuzz.sh long TARGET RUNS   one target for RUNS inputs (the figures in docs/reliability.md);
#                                     new inputs are kept in fuzz/corpus-new/TARGET (not committed)
#   deploy/fuzz.sh minimize           merges corpus-new into the committed corpus, keeping only
#                                     inputs that add coverage (libFuzzer -merge=1)
#
# Inputs: fuzz/corpus/TARGET (minimized, found by fuzzing), fuzz/seeds/TARGET (valid inputs written
# by `cargo run -p vltava-kafka --example fuzz_seeds`) and fuzz/regressions/TARGET (every input that
# once crashed a target, replayed on every run). The smoke never writes into them; a crash leaves its input in
# fuzz/artifacts/TARGET/ and fails the script. cargo-fuzz passes the compiler flags of
# libFuzzer's coverage instrumentation, which are nightly-only: RUSTC_BOOTSTRAP=1 lets the stable
# toolchain accept them. No sanitizer is used (the code under test has no unsafe).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/vltava-fuzz-target}"
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz (crates.io)..."
    cargo install cargo-fuzz --locked --version 0.13.2
fi
mode="${1:-smoke}"
cd fuzz
cargo fuzz build -s none --debug-assertions
bin="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

run() { # target runs new-inputs-dir [extra libFuzzer flags...]
    local target="$1" runs="$2" new="$3"
    shift 3
    mkdir -p "$new" "artifacts/$target" "corpus/$target"
    local inputs=("corpus/$target")
    for dir in "seeds/$target" "regressions/$target"; do
        if [ -d "$dir" ]; then inputs+=("$dir"); fi
    done
    "$bin/$target" "$new" "${inputs[@]}" -runs="$runs" -rss_limit_mb=2048 \
        -artifact_prefix="artifacts/$target/" -print_final_stats=1 "$@" 2>&1 |
        grep -E "^(INFO: seed corpus|#[0-9]+ *DONE|Done|stat::number_of_executed_units|stat::average_exec_per_sec|==|SUMMARY|thread .* panicked|memory allocation)" || true
    if [ -n "$(ls -A "artifacts/$target")" ]; then
        echo "FAIL: $target crashed; inputs in fuzz/artifacts/$target/" >&2
        return 1
    fi
}

case "$mode" in
    smoke)
        runs="${2:-20000}"
        for target in $(cargo fuzz list); do
            echo "== $target ($runs runs after its corpus)"
            # A fixed seed: the smoke is the same on every machine, so CI judges the committed
            # code, not the luck of a draw (long runs draw their own seeds).
            run "$target" "$runs" "$scratch/$target" -seed=1
        done
        ;;
    long)
        target="$2"
        runs="${3:-10000000}"
        echo "== $target ($runs runs)"
        start=$(date +%s)
        run "$target" "$runs" "corpus-new/$target"
        echo "$target: $runs runs in $(($(date +%s) - start)) s, no crash"
        ;;
    minimize)
        for target in $(cargo fuzz list); do
            [ -d "corpus-new/$target" ] || continue
            mkdir -p "$scratch/$target"
            "$bin/$target" -merge=1 "$scratch/$target" "corpus/$target" "corpus-new/$target" 2>&1 | grep -E "MERGE-OUTER: [0-9]+ new files" || true
            rm -rf "corpus/$target" "corpus-new/$target"
            mv "$scratch/$target" "corpus/$target"
            echo "$target: $(ls "corpus/$target" | wc -l) inputs"
        done
        ;;
    *)
        echo "usage: deploy/fuzz.sh smoke [RUNS] | long TARGET RUNS | minimize" >&2
        exit 2
        ;;
esac
