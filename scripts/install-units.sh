#!/usr/bin/env bash
# Puts tufkeyd's systemd units, udev rule and polkit rule (udev/) in place, reloads
# systemd, and prints what it did and what to run next (README, "systemd units").
#
#   scripts/install-units.sh --user   [--bin-dir DIR] [--root DIR]
#       as the user who signs: tufkeyd.socket + tufkeyd.service in
#       ~/.config/systemd/user (socket activation, $XDG_RUNTIME_DIR/tufkey/tufkeyd.sock);
#       run as root, it also installs the udev rule that starts the service when a
#       YubiKey is plugged in (as a user it prints the command for root instead).
#   scripts/install-units.sh --system [--bin-dir DIR] [--root DIR]
#       as root: system mode (tufkeyd as the user `tufkey`, socket
#       /run/tufkey/tufkeyd.sock for the group tufkey-clients): sysusers.d,
#       tmpfiles.d, the store secret /etc/tufkey/secret (made once), tufkeyd.socket +
#       tufkeyd.service in /etc/systemd/system, the polkit rule for pcscd, the udev rule.
#
#   --bin-dir DIR  where the tufkeyd binary is; default /usr/local/bin when
#                  /usr/local/bin/tufkeyd exists, else this repository's target/release.
#   --root DIR     install below DIR instead of / (a package build, a test): nothing
#                  is reloaded or started; users and directories are made with --root.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() {
    sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

mode=""
bin_dir=""
root=""
while (($#)); do
    case "$1" in
    --user | --system) mode="${1#--}" ;;
    --bin-dir) bin_dir="${2:?--bin-dir needs a directory}"; shift ;;
    --root) root="${2:?--root needs a directory}"; shift ;;
    -h | --help) usage 0 ;;
    *) echo "install-units.sh: unknown argument $1" >&2; usage 2 >&2 ;;
    esac
    shift
done
[ -n "$mode" ] || { echo "install-units.sh: say --user or --system" >&2; usage 2 >&2; }

if [ -z "$bin_dir" ]; then
    if [ -x /usr/local/bin/tufkeyd ]; then bin_dir=/usr/local/bin; else bin_dir="$repo/target/release"; fi
fi
bin_dir="$(cd "$bin_dir" 2>/dev/null && pwd)" || {
    echo "install-units.sh: --bin-dir $bin_dir: no such directory" >&2
    exit 1
}
daemon="$bin_dir/tufkeyd"
[ -x "$daemon" ] || {
    echo "install-units.sh: no tufkeyd at $daemon: build it (cargo build --release -p tufkeyd) or give --bin-dir" >&2
    exit 1
}

did() { printf '  %s\n' "$*"; }

# install_unit SOURCE DEST: the unit with ExecStart= pointing at $daemon.
install_unit() {
    install -d -m 0755 "$(dirname "$2")"
    sed "s|/usr/bin/tufkeyd|$daemon|" "$1" >"$2.tmp"
    chmod 0644 "$2.tmp"
    mv "$2.tmp" "$2"
    if grep -q '^ExecStart=' "$2"; then did "installed $2 (ExecStart: $daemon)"; else did "installed $2"; fi
}

install_file() {
    install -D -m 0644 "$1" "$2"
    did "installed $2"
}

# Runs a command unless --root was given; says which it ran or skipped.
run() {
    if [ -n "$root" ]; then
        did "skipped (--root): $*"
    elif "$@"; then
        did "ran: $*"
    else
        did "FAILED: $* (run it again once that is fixed)"
        return 1
    fi
}

udev_rule() {
    if [ "$(id -u)" -eq 0 ]; then
        install_file "$repo/udev/70-tufkey-yubikey.rules" "$root/etc/udev/rules.d/70-tufkey-yubikey.rules"
        if command -v udevadm >/dev/null; then
            run udevadm control --reload || true
        fi
    else
        did "not installed (needs root): the udev rule that starts tufkeyd when a YubiKey is plugged in:"
        did "  sudo install -m 0644 $repo/udev/70-tufkey-yubikey.rules /etc/udev/rules.d/ && sudo udevadm control --reload"
    fi
}

echo "install-units.sh --$mode:"
case "$mode" in
user)
    if [ -n "$root" ]; then
        units="$root/.config/systemd/user"
    else
        units="${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user"
    fi
    install_unit "$repo/udev/tufkeyd.service" "$units/tufkeyd.service"
    install_unit "$repo/udev/tufkeyd.socket" "$units/tufkeyd.socket"
    udev_rule
    run systemctl --user daemon-reload || true
    echo "next: systemctl --user enable --now tufkeyd.socket   # tufkeyd starts on the first \`tufkey\` command"
    ;;
system)
    [ -n "$root" ] || [ "$(id -u)" -eq 0 ] || {
        echo "install-units.sh: --system installs into /etc and /usr/lib: run it as root" >&2
        exit 1
    }
    case "$daemon" in
    /home/* | /root/* | /run/user/*)
        echo "install-units.sh: $daemon is under a home directory, which the system unit hides from tufkeyd (ProtectHome=yes): install -m 0755 $daemon /usr/local/bin/ and run this again" >&2
        exit 1
        ;;
    esac
    install_file "$repo/udev/tufkey.sysusers" "$root/usr/lib/sysusers.d/tufkey.conf"
    if [ -n "$root" ]; then
        systemd-sysusers --root="$root" tufkey.conf
        did "ran: systemd-sysusers --root=$root tufkey.conf"
    else
        run systemd-sysusers tufkey.conf
    fi
    install_file "$repo/udev/tufkey.tmpfiles" "$root/usr/lib/tmpfiles.d/tufkey.conf"
    run systemd-tmpfiles --create tufkey.conf
    if [ -e "$root/etc/tufkey/secret" ]; then
        did "kept $root/etc/tufkey/secret (the store secret is made once)"
    else
        install -d -m 0700 "$root/etc/tufkey"
        (umask 077 && head -c 32 /dev/urandom | base64 >"$root/etc/tufkey/secret")
        did "created $root/etc/tufkey/secret (root's 0600 store secret; systemd hands it to tufkeyd)"
    fi
    install_unit "$repo/udev/tufkeyd-system.service" "$root/etc/systemd/system/tufkeyd.service"
    install_unit "$repo/udev/tufkeyd-system.socket" "$root/etc/systemd/system/tufkeyd.socket"
    install_file "$repo/udev/polkit/50-tufkey-pcscd.rules" "$root/etc/polkit-1/rules.d/50-tufkey-pcscd.rules"
    udev_rule
    run systemctl daemon-reload || true
    echo "next: systemctl enable --now tufkeyd.socket"
    echo "      usermod -aG tufkey-clients alice   # who may sign; clients:"
    echo "      export TUFKEY_SOCK=/run/tufkey/tufkeyd.sock TUFKEY_SERVER_UID=0"
    ;;
esac
