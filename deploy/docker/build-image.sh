#!/usr/bin/env bash
# Builds the `vltava:latest` Docker image FROM scratch: the release binary plus exactly the shared
# libraries `ldd` says it needs (and the dynamic loader), so no base image or registry is needed.
#
#   deploy/docker/build-image.sh [BINARY]
#
# BINARY (or $VLTAVA_BIN) defaults to the first existing of
#   $CARGO_TARGET_DIR/release/vltava, ~/.cache/vltava-release/release/vltava,
#   ~/.cache/vltava-target/release/vltava
# (build it with `make release`). $IMAGE overrides the tag (default vltava:latest); STRIP_DEBUG=0
# keeps the binary's debug info.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
image="${IMAGE:-vltava:latest}"

source "$(dirname "${BASH_SOURCE[0]}")/find-bin.sh"
bin="$(find_vltava_bin "${1:-}")"
if [[ -z "$bin" || ! -x "$bin" ]]; then
    echo "build-image: no vltava binary found (${bin:-none}); run 'make release' or pass its path" >&2
    exit 1
fi
command -v ldd >/dev/null || { echo "build-image: ldd is required" >&2; exit 1; }
command -v docker >/dev/null || { echo "build-image: docker is required" >&2; exit 1; }

ctx="$(mktemp -d "${TMPDIR:-/tmp}/vltava-image.XXXXXX")"
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root/usr/local/bin" "$root/data" "$root/tmp" "$root/etc"
chmod 1777 "$root/tmp"

# The binary. The release profile keeps line tables (`debug = 1`, ~500 MB); the image drops them
# with `strip --strip-debug` (~30 MB) but keeps the symbol table, so backtraces still name
# functions. STRIP_DEBUG=0 copies the binary as it is.
if [[ "${STRIP_DEBUG:-1}" != 0 ]] && command -v strip >/dev/null; then
    strip --strip-debug -o "$root/usr/local/bin/vltava" "$bin"
else
    cp "$bin" "$root/usr/local/bin/vltava"
fi
chmod 0755 "$root/usr/local/bin/vltava"

# Every library ldd resolves ("name => /path (addr)") and the loader ("/lib64/ld-linux... (addr)"),
# copied (symlinks dereferenced) to the path the binary asks for.
libs=()
while read -r line; do
    case "$line" in
        *"=> not found"*)
            echo "build-image: missing library: $line" >&2
            exit 1
            ;;
        *"=> /"*) libs+=("$(sed -E 's/.*=> ([^ ]+) .*/\1/' <<<"$line")") ;;
        /*) libs+=("${line%% *}") ;;
    esac
done < <(ldd "$bin")
if ! printf '%s\n' "${libs[@]}" | grep -q 'ld-linux'; then
    echo "build-image: ldd named no dynamic loader; is $bin dynamically linked?" >&2
    exit 1
fi
for lib in "${libs[@]}"; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done

# getaddrinfo (service names such as controller-1 are resolved by Docker's DNS): files, then DNS.
# Docker bind-mounts /etc/hosts and /etc/resolv.conf into every container.
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
printf 'root:x:0:0:root:/:/usr/local/bin/vltava\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"

cp "$here/Dockerfile" "$ctx/Dockerfile"

echo "build-image: $bin ($(du -h "$bin" | cut -f1), $(du -h "$root/usr/local/bin/vltava" | cut -f1) in the image) with ${#libs[@]} libraries:"
printf '  %s\n' "${libs[@]}"
# The legacy builder needs no buildx plug-in and FROM scratch needs no registry.
DOCKER_BUILDKIT="${DOCKER_BUILDKIT:-0}" docker build -t "$image" "$ctx"
docker image ls "$image"
