#!/usr/bin/env bash
# Generates the Python gRPC stubs of proto/vltava/v1 with grpcio-tools' bundled protoc (no protoc
# binary needed).
#
#   ./generate.sh [OUT_DIR]        (default: examples/python/vltava_pb, git-ignored)
#
# The stubs are generated from the proto root, so they form the package `vltava.v1`:
# put OUT_DIR on sys.path (or PYTHONPATH) and `from vltava.v1 import gateway_pb2, gateway_pb2_grpc`.
# PYTHON selects the interpreter (default: python3), which needs grpcio-tools (requirements.txt).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
proto_root="$(cd "$here/../../proto" && pwd)"
out="${1:-$here/vltava_pb}"
python="${PYTHON:-python3}"

mkdir -p "$out"
rm -rf "$out/vltava"   # no stale stubs of a removed .proto
"$python" -m grpc_tools.protoc \
    -I "$proto_root" \
    --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
    "$proto_root"/vltava/v1/*.proto
# Regular packages (not namespace packages), so `import vltava.v1` resolves to these stubs only.
touch "$out/vltava/__init__.py" "$out/vltava/v1/__init__.py"
echo "generated $(ls "$out"/vltava/v1/*_pb2.py | wc -l) modules in $out/vltava/v1" >&2
