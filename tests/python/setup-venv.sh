#!/usr/bin/env bash
# Create (or reuse) a Python virtualenv with the TUF verifiers used by the
# end-to-end tests, and tufkey's own Python signer (client/python) installed into
# it.  Idempotent: does nothing when the venv already satisfies requirements.txt
# and holds the current client/python (a stamp file records the requirements and a
# hash of client/python's files it was built from).
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
signer="$here/../../client/python"
stamp="$venv/.tufkey-requirements"
python="${PYTHON:-python3}"

# What the venv is built from: requirements.txt, then a hash of client/python's
# sources (build output and caches left out).
wanted_stamp() {
    cat "$req"
    printf '# client/python %s\n' "$(cd "$signer" && find . \( -name build -o -name '*.egg-info' \
        -o -name __pycache__ \) -prune -o -type f -print0 | LC_ALL=C sort -z |
        xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"
}
up_to_date() {
    [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && cmp -s <(wanted_stamp) "$stamp"
}

if up_to_date; then
    exit 0
fi

mkdir -p "$(dirname "$venv")"
# Serialise concurrent setups (e.g. parallel cargo tests) on a lock file.
exec 9>"$venv.lock"
flock 9
if up_to_date; then
    exit 0
fi

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
# The signer from a copy, so pip's build leaves nothing in the source tree; its
# dependencies are all in requirements.txt, and so is its build backend (setuptools,
# which grpcio-tools pulls in), so nothing more comes from the index.
built_from="$(wanted_stamp)"
build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT
cp -r "$signer" "$build/python"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
    --no-build-isolation --force-reinstall "$build/python"
printf '%s\n' "$built_from" > "$stamp"
