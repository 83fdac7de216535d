#!/usr/bin/env bash
# Usage: scripts/soak.sh [SECONDS]      (default 600; at least 30)
#
# The soak (tests/tests/soak.rs) for SECONDS against the release build: signing,
# key generation and deletion, lock/unlock of the software keystore and YubiKey pulls
# and re-insertions, over the Unix socket and mutual TLS; it fails on a bad
# signature, a lost key, an unexpected error, or growth of the daemon's RSS or open
# descriptors beyond the test's bounds, and prints a summary (operations, errors by
# kind, p50/p99 latencies, RSS and fd figures). `.ci/run` runs the same test for 60 s.
#
# It builds what it needs (release binaries, the test, the virtual cards) and runs in
# a private mount + network namespace with its own pcscd on a tmpfs /run/pcscd and
# four virtual cards (serials 1001..1004), so it neither needs nor disturbs a system
# pcscd. Needs root (unshare), pcscd and vpcd (scripts/vcard/install.sh), and `ip`
# (iproute2). To yield to other work: nice -n 10 scripts/soak.sh 600.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:$PATH"

secs=${1:-600}
if ! [[ $secs =~ ^[0-9]+$ ]] || ((secs < 30)); then
    echo "usage: scripts/soak.sh [SECONDS] (whole seconds, at least 30; default 600)" >&2
    exit 2
fi

if [[ ${TUFKEY_SOAK_NAMESPACE:-} != 1 ]]; then
    if [[ $(id -u) != 0 ]]; then
        echo "scripts/soak.sh needs root: it starts its own pcscd in a private namespace (run it with sudo)" >&2
        exit 1
    fi
    for tool in unshare ip pcscd; do
        command -v "$tool" >/dev/null || {
            echo "scripts/soak.sh: $tool is missing: install util-linux, iproute2, and run scripts/vcard/install.sh" >&2
            exit 1
        }
    done
    cargo build --release --bins
    cargo test --no-run -p tufkey-e2e --test soak
    exec env TUFKEY_SOAK_NAMESPACE=1 unshare -m -n --propagation private "$PWD/scripts/soak.sh" "$secs"
fi

# Inside the namespace: a private /run/pcscd, loopback up (vpcd and mTLS use it).
mkdir -p /run/pcscd
mount -t tmpfs tmpfs /run/pcscd
ip link set lo up
state=$(mktemp -d /tmp/tufkey-soak-vcard.XXXXXX)
trap 'bash scripts/vcard/stop.sh "$state" >/dev/null 2>&1 || true; rm -rf "$state"' EXIT
bash scripts/vcard/start.sh "$state" 1001 1002 1003 1004 </dev/null
export TUFKEY_VCARD_SERIALS=1001,1002,1003,1004 TUFKEY_VCARD_STATE_DIR="$state"
export TUFKEY_SOAK_SECS=$secs
cargo test -p tufkey-e2e --test soak -- --nocapture </dev/null
