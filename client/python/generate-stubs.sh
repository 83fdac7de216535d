#!/usr/bin/env bash
# generate-stubs.sh [OUT_DIR] — regenerate tufkey_signer's gRPC stubs from proto/.
#
# Runs grpcio-tools (`python -m grpc_tools.protoc`, from $PYTHON or python3) on
# proto/proto/tufkey/v1/tufkey.proto and writes tufkey_pb2.py, tufkey_pb2.pyi and
# tufkey_pb2_grpc.py into OUT_DIR (default: src/tufkey_signer/_proto/ next to this
# script). The stubs are committed; tests/tests/python_signer.rs regenerates them
# into a temporary directory and fails when they differ, so run this script after
# every change to the .proto file (with the grpcio-tools of tests/python/requirements.txt).
#
# protoc writes stubs for a top-level package `tufkey.v1`; they are moved into the
# `tufkey_signer._proto` package by rewriting the two lines that name the module
# (the descriptor keeps its canonical file name `tufkey/v1/tufkey.proto`).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
protos="$here/../../proto/proto"
out="${1:-$here/src/tufkey_signer/_proto}"
python="${PYTHON:-python3}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$python" -m grpc_tools.protoc -I "$protos" \
    --python_out="$work" --pyi_out="$work" --grpc_python_out="$work" \
    tufkey/v1/tufkey.proto

# rewrite FILE FROM TO: replace the one line matching FROM (a sed regex), or fail.
rewrite() {
    local file=$1 from=$2 to=$3 count
    count=$(grep -c -- "$from" "$file" || true)
    if [ "$count" != 1 ]; then
        echo "generate-stubs.sh: expected one line matching '$from' in $(basename "$file"), found $count" >&2
        exit 1
    fi
    sed -i -e "s|$from|$to|" "$file"
}
generated="$work/tufkey/v1"
rewrite "$generated/tufkey_pb2.py" "'tufkey\.v1\.tufkey_pb2'" "'tufkey_signer._proto.tufkey_pb2'"
rewrite "$generated/tufkey_pb2_grpc.py" "^from tufkey\.v1 import tufkey_pb2 as" "from . import tufkey_pb2 as"

mkdir -p "$out"
for file in tufkey_pb2.py tufkey_pb2.pyi tufkey_pb2_grpc.py; do
    cp "$generated/$file" "$out/$file"
done
