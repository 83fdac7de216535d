#!/usr/bin/env bash
# Usage: scripts/vcard/start.sh STATE_DIR SERIAL [SERIAL...]
#
# Starts our own pcscd (foreground mode, backgrounded here) with one vpcd
# virtual reader slot per card (ports 35963, 35964, ...), builds and starts
# one tufkey-vcard per serial with its state in STATE_DIR/card-SERIAL.state,
# and returns once pcscd reports every card present (by asking each its
# serial). Stop with scripts/vcard/stop.sh STATE_DIR.
#
# Requires that no other pcscd serves /run/pcscd (e.g. a systemd
# pcscd.socket): stop it first (systemctl stop pcscd.socket pcscd).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

(($# >= 2)) || vcard_die "usage: start.sh STATE_DIR SERIAL [SERIAL...]"
mkdir -p "$1"
state=$(cd "$1" && pwd)
shift
serials=("$@")
for s in "${serials[@]}"; do
    [[ $s =~ ^[0-9]+$ ]] && ((s > 0 && s <= 4294967295)) || vcard_die "bad serial '$s'"
done
[[ $(printf '%s\n' "${serials[@]}" | sort | uniq -d) == "" ]] || vcard_die "duplicate serials"
[[ -e $VCARD_LIBIFD ]] || vcard_die "$VCARD_LIBIFD missing: run scripts/vcard/install.sh"
command -v pcscd >/dev/null || vcard_die "pcscd missing: run scripts/vcard/install.sh"

# Restart cleanly if this state dir already has a running environment.
"$(dirname "${BASH_SOURCE[0]}")/stop.sh" "$state"

# Build the card and the probe (a no-op when up to date).
manifest=$VCARD_REPO/tests/vcard/Cargo.toml
vcard_log "building tests/vcard (release)"
cargo build --release --bins --manifest-path "$manifest" </dev/null >&2
target=$(cargo metadata --format-version 1 --no-deps --manifest-path "$manifest" </dev/null |
    grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)
[[ -x $target/release/tufkey-vcard ]] || vcard_die "build produced no $target/release/tufkey-vcard"
echo "$target/release" >"$state/bindir"

# Is some other pcscd already serving clients?
if vcard_probe "$state" list >/dev/null 2>&1; then
    vcard_die "another pcscd is already serving /run/pcscd (system pcscd or pcscd.socket?); stop it first, e.g. 'systemctl stop pcscd.socket pcscd'"
fi
if [[ -s /run/pcscd/pcscd.pid ]] && kill -0 "$(cat /run/pcscd/pcscd.pid)" 2>/dev/null; then
    vcard_die "a pcscd (pid $(cat /run/pcscd/pcscd.pid)) is running; stop it first"
fi

# One vpcd reader entry gives two slots: ports P and P+1. vpcd keeps its
# slots in a global array indexed by slot number only, so a second entry
# using the same .so would take over the first one's slots; each further
# entry therefore loads its own copy of the driver (separate globals).
conf=$state/reader.conf.d
rm -rf "$conf" "$state/drivers"
mkdir -p "$conf" "$state/drivers"
n=${#serials[@]}
for ((r = 0; r < (n + 1) / 2; r++)); do
    port=$((VCARD_BASE_PORT + 2 * r))
    lib=$VCARD_LIBIFD
    if ((r > 0)); then
        lib=$state/drivers/libifdvpcd-$r.so
        cp "$VCARD_LIBIFD" "$lib"
    fi
    cat >>"$conf/vpcd" <<CONF
FRIENDLYNAME "Virtual PCD $r"
DEVICENAME   /dev/null:$port
LIBPATH      $lib
CHANNELID    $port

CONF
done
for ((i = 0; i < n; i++)); do
    echo $((VCARD_BASE_PORT + i)) >"$state/card-${serials[i]}.port"
done

setsid pcscd --foreground --config "$conf" </dev/null >>"$state/pcscd.log" 2>&1 &
echo $! >"$state/pcscd.pid"
vcard_log "pcscd started (pid $!), readers on ports $VCARD_BASE_PORT..$((VCARD_BASE_PORT + 2 * ((n + 1) / 2) - 1))"

# Wait until pcscd lists its readers (then the vpcd ports listen).
want_readers=$((2 * ((n + 1) / 2)))
for ((i = 0; ; i++)); do
    vcard_alive "$state/pcscd.pid" pcscd || vcard_die "pcscd exited; see $state/pcscd.log"
    have=$(vcard_probe "$state" list 2>/dev/null | wc -l || true)
    ((have >= want_readers)) && break
    ((i < 150)) || vcard_die "pcscd shows $have of $want_readers readers after 30 s; see $state/pcscd.log"
    sleep 0.2
done

for s in "${serials[@]}"; do
    vcard_start_card "$state" "$s"
done
if ! vcard_probe "$state" wait-present --timeout 60 "${serials[@]}"; then
    vcard_die "cards did not show up in pcscd; see $state/card-*.log and $state/pcscd.log"
fi
vcard_probe "$state" list >&2
vcard_log "ready: TUFKEY_VCARD_SERIALS=$(IFS=,; echo "${serials[*]}") TUFKEY_VCARD_STATE_DIR=$state"
