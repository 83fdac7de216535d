#!/usr/bin/env bash
# Create (or reuse) a Python virtualenv with the TUF verifiers used by the
# end-to-end tests.  Idempotent: does nothing when the venv already satisfies
# requirements.txt (a stamp file records the requirements it was built from).
#
# usage: setup-venv.sh VENV_DIR
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 VENV_DIR" >&2
    exit 2
fi
venv="$1"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
req="$here/requirements.txt"
stamp="$venv/.tufkey-requirements"
python="${PYTHON:-python3}"

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && cmp -s "$req" "$stamp"; then
    exit 0
fi

mkdir -p "$(dirname "$venv")"
# Serialise concurrent setups (e.g. parallel cargo tests) on a lock file.
exec 9>"$venv.lock"
flock 9
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && cmp -s "$req" "$stamp"; then
    exit 0
fi

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
cp "$req" "$stamp"
