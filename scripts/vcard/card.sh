#!/usr/bin/env bash
# Usage: scripts/vcard/card.sh STATE_DIR stop|start SERIAL
#   stop:  pull the card (stop its process), wait until pcscd sees it gone
#   start: re-insert it (same state file, same reader), wait until present
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

(($# == 3)) || vcard_die "usage: card.sh STATE_DIR stop|start SERIAL"
state=$(cd "$1" && pwd)
action=$2
serial=$3
[[ -s $state/card-$serial.port ]] || vcard_die "serial $serial is not part of $state (see start.sh)"
case $action in
stop)
    vcard_kill "$state/card-$serial.pid" tufkey-vcard
    vcard_probe "$state" wait-absent --timeout 30 "$serial"
    vcard_log "card $serial pulled"
    ;;
start)
    vcard_alive "$state/pcscd.pid" pcscd || vcard_die "our pcscd is not running; use start.sh"
    vcard_start_card "$state" "$serial"
    vcard_probe "$state" wait-present --timeout 30 "$serial"
    vcard_log "card $serial inserted"
    ;;
*) vcard_die "unknown action '$action' (stop|start)" ;;
esac
