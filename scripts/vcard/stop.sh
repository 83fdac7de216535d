#!/usr/bin/env bash
# Usage: scripts/vcard/stop.sh STATE_DIR
# Stops the cards and the pcscd recorded in STATE_DIR (by PID only; other
# pcscd or card processes are left alone). Card state files are kept.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

(($# == 1)) || vcard_die "usage: stop.sh STATE_DIR"
[[ -d $1 ]] || exit 0
state=$(cd "$1" && pwd)
shopt -s nullglob
for pidfile in "$state"/card-*.pid "$state"/lookalike-*.pid; do
    vcard_kill "$pidfile" tufkey-vcard
done
vcard_kill "$state/pcscd.pid" pcscd
