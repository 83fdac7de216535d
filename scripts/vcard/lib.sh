# Shared helpers for scripts/vcard/*.sh (sourced, not run).
# State directory layout (STATE_DIR):
#   reader.conf.d/vpcd     pcscd reader config (one vpcd slot per card)
#   pcscd.pid pcscd.log    our pcscd
#   bindir                 directory holding tufkey-vcard and tufkey-vcard-probe
#   card-SERIAL.port       vpcd port the card joins
#   card-SERIAL.pid/.log   the card process
#   card-SERIAL.state      the card's persistent storage (keys, PIN, certs)

VCARD_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VCARD_BASE_PORT=${TUFKEY_VCARD_BASE_PORT:-35963}
VCARD_LIBIFD=${TUFKEY_VCARD_LIBIFD:-/usr/lib/pcsc/drivers/serial/libifdvpcd.so}

vcard_die() { echo "vcard: $*" >&2; exit 1; }
vcard_log() { echo "vcard: $*" >&2; }

# vcard_alive PIDFILE NAME: true if the recorded PID runs a program called NAME.
vcard_alive() {
    local pidfile=$1 name=$2 pid comm
    [[ -s $pidfile ]] || return 1
    pid=$(<"$pidfile")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    # Right after start the PID may still be setsid, just before it execs NAME.
    [[ $comm == "$name"* || $comm == setsid ]]
}

# vcard_kill PIDFILE NAME: stop that PID (TERM, then KILL after 10 s) if it
# still runs NAME; remove the pid file. Never touches other processes.
vcard_kill() {
    local pidfile=$1 name=$2 pid i
    if vcard_alive "$pidfile" "$name"; then
        pid=$(<"$pidfile")
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            vcard_alive "$pidfile" "$name" || break
            sleep 0.1
        done
        if vcard_alive "$pidfile" "$name"; then
            vcard_log "$name ($pid) ignored TERM; killing"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.2
        fi
    fi
    rm -f "$pidfile"
}

vcard_bindir() {
    local state=$1
    [[ -s $state/bindir ]] || vcard_die "$state/bindir missing: run scripts/vcard/start.sh first"
    cat "$state/bindir"
}

# vcard_start_card STATE SERIAL: start one card process (not waiting for pcscd).
vcard_start_card() {
    local state=$1 serial=$2 bindir port
    bindir=$(vcard_bindir "$state")
    [[ -s $state/card-$serial.port ]] || vcard_die "no reader configured for serial $serial in $state"
    port=$(<"$state/card-$serial.port")
    if vcard_alive "$state/card-$serial.pid" tufkey-vcard; then
        vcard_log "card $serial already running (pid $(<"$state/card-$serial.pid"))"
        return 0
    fi
    # setsid + redirections: the card outlives this script and holds no
    # pipe of its caller open.
    setsid "$bindir/tufkey-vcard" --serial "$serial" \
        --vpcd-host 127.0.0.1 --vpcd-port "$port" \
        --state-file "$state/card-$serial.state" \
        </dev/null >>"$state/card-$serial.log" 2>&1 &
    echo $! >"$state/card-$serial.pid"
    vcard_log "card $serial started (pid $!, vpcd port $port)"
}

# vcard_probe STATE ARGS...: run tufkey-vcard-probe.
vcard_probe() {
    local state=$1
    shift
    "$(vcard_bindir "$state")/tufkey-vcard-probe" "$@"
}
