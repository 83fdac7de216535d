#!/usr/bin/env bash
# Benchmark (not a test): tufkeyd's added latency per YubiKey signature, daemon
# path vs the yubikey crate directly on the same card, median of 200 (or $1).
#
# Uses the virtual cards from TUFKEY_VCARD_SERIALS / TUFKEY_VCARD_STATE_DIR if
# set (first serial); otherwise starts one card (serial 1001) with its own pcscd
# (needs scripts/vcard/install.sh) and stops it afterwards. Resets that card.
# Usage: scripts/bench-yubikey.sh [ROUNDS]
# Env: BASE_BIN_DIR=DIR also measures that (older) build's tufkeyd, same card, same run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds=${1:-200}

if [[ -z ${TUFKEY_VCARD_SERIALS:-} ]]; then
    state=$(mktemp -d /tmp/tufkey-bench-vcard.XXXXXX)
    trap 'bash scripts/vcard/stop.sh "$state" || true' EXIT
    bash scripts/vcard/start.sh "$state" 1001 </dev/null
    export TUFKEY_VCARD_SERIALS=1001 TUFKEY_VCARD_STATE_DIR=$state
fi
serial=${TUFKEY_VCARD_SERIALS%%,*}

cargo build --release --bins -p tufkeyd -p tufkey
cargo build --release -p tufkey-e2e --example bench_yubikey
target=$(cargo metadata --format-version 1 --no-deps | grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)
for bin_dir in ${BASE_BIN_DIR:-} "$target/release"; do
    echo "tufkeyd from $bin_dir:"
    TUFKEY_BIN_DIR=$bin_dir "$target/release/examples/bench_yubikey" "$serial" "$rounds"
done
