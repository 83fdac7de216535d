#!/usr/bin/env bash
# Usage: scripts/vcard/lookalike.sh STATE_DIR start|stop SERIAL HOST_SERIAL
#   start: pull card HOST_SERIAL and put a look-alike of card SERIAL in its reader:
#          a fresh card (new state file STATE_DIR/lookalike-SERIAL.state, so new
#          keys and a new attestation certificate) that reports SERIAL. Waits until
#          pcscd shows two cards reporting SERIAL. The look-alike counts the VERIFY
#          commands with a PIN it receives in lookalike-SERIAL.state.verifies.
#   stop:  take the look-alike out and re-insert card HOST_SERIAL.
# The genuine card SERIAL stays in its own reader throughout.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

(($# == 4)) || vcard_die "usage: lookalike.sh STATE_DIR start|stop SERIAL HOST_SERIAL"
state=$(cd "$1" && pwd)
action=$2
serial=$3
host=$4
[[ -s $state/card-$host.port ]] || vcard_die "serial $host is not part of $state (see start.sh)"
pidfile=$state/lookalike-$serial.pid
card_state=$state/lookalike-$serial.state

# vcard_count SERIAL: how many readers hold a card reporting SERIAL.
vcard_count() {
    vcard_probe "$state" list | awk -F'\t' -v s="$1" '$2 == s { n++ } END { print n + 0 }'
}

# vcard_wait_count SERIAL N: wait (30 s at most) until N readers hold SERIAL.
vcard_wait_count() {
    local i
    for ((i = 0; i < 150; i++)); do
        [[ $(vcard_count "$1") == "$2" ]] && return 0
        sleep 0.2
    done
    vcard_die "pcscd shows $(vcard_count "$1") cards reporting $1, expected $2"
}

case $action in
start)
    vcard_alive "$state/pcscd.pid" pcscd || vcard_die "our pcscd is not running; use start.sh"
    "$(dirname "${BASH_SOURCE[0]}")/card.sh" "$state" stop "$host"
    rm -f "$card_state" "$card_state".*
    setsid "$(vcard_bindir "$state")/tufkey-vcard" --serial "$serial" \
        --vpcd-host 127.0.0.1 --vpcd-port "$(<"$state/card-$host.port")" \
        --state-file "$card_state" \
        </dev/null >>"$state/lookalike-$serial.log" 2>&1 &
    echo $! >"$pidfile"
    vcard_wait_count "$serial" 2
    vcard_log "look-alike of card $serial inserted in card $host's reader"
    ;;
stop)
    vcard_kill "$pidfile" tufkey-vcard
    vcard_wait_count "$serial" 1
    "$(dirname "${BASH_SOURCE[0]}")/card.sh" "$state" start "$host"
    vcard_log "look-alike of card $serial removed; card $host back"
    ;;
*) vcard_die "unknown action '$action' (start|stop)" ;;
esac
