# Sourced by the Docker scripts: find_vltava_bin [PATH] prints the release vltava binary to use:
# PATH, else $VLTAVA_BIN, else the first release build found in the usual target directories.
find_vltava_bin() {
    local bin="${1:-${VLTAVA_BIN:-}}"
    if [[ -z "$bin" ]]; then
        for candidate in \
            ${CARGO_TARGET_DIR:+"$CARGO_TARGET_DIR/release/vltava"} \
            "$HOME/.cache/vltava-release/release/vltava" \
            "$HOME/.cache/vltava-target/release/vltava"; do
            if [[ -x "$candidate" ]]; then
                bin="$candidate"
                break
            fi
        done
    fi
    printf '%s\n' "$bin"
}
