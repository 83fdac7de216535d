#!/usr/bin/env bash
# probe.sh [ADDR DIR] [-- probe_signer.py options] — run tests/notary/probe_signer.py
# (gRPC facts + conformance checks of a Notary signer) in a throwaway venv.
#   probe.sh                          temp certs + the real notary-signer, probed, stopped
#   probe.sh 127.0.0.1:7899 DIR       probe whatever listens there with DIR's certs
#   probe.sh -- --bench 3000          extra options for probe_signer.py
# Venv: $VENV (default /tmp/tufkey-notary-venv) with grpcio grpcio-tools
# grpcio-health-checking cryptography from PyPI (created on first use; not in the repo).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
ROOT=$(cd "$HERE/../.." && pwd)
VENV=${VENV:-/tmp/tufkey-notary-venv}
ADDR="" DIR=""
if [ $# -ge 2 ] && [ "$1" != -- ]; then ADDR=$1 DIR=$2; shift 2; fi
[ "${1:-}" = -- ] && shift
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import grpc, grpc_tools, grpc_health, cryptography' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q grpcio grpcio-tools grpcio-health-checking cryptography
fi
if [ -z "$ADDR" ]; then
  T=$(mktemp -d /tmp/notary-probe.XXXXXX)
  trap 'stop_pidfile "$T"/*.pid; rm -rf "$T"' EXIT
  "$HERE/make-certs.sh" "$T" >/dev/null
  port=$(free_port)
  NOTARY_LOG_LEVEL=${NOTARY_LOG_LEVEL:-error} "$HERE/start-signer.sh" "$T" "$port"
  ADDR=127.0.0.1:$port DIR=$T
fi
GRPC_VERBOSITY=${GRPC_VERBOSITY:-NONE} "$VENV/bin/python" "$ROOT/tests/notary/probe_signer.py" --addr "$ADDR" --certs "$DIR" "$@"
