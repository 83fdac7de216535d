#!/usr/bin/env bash
# Installs the Debian packages the tests need (idempotent, non-interactive):
#   keyutils     kernel keyring, the OS keyring the `keyring` crate uses here
#   util-linux   setpriv, to call the daemon as another uid
#   passwd       useradd/groupadd: the system-mode test makes its own users
#   strace       the system-mode test shows a client cannot ptrace the daemon
#   systemd      systemd-analyze and systemd-sysusers check the unit files in udev/
#   udev         udevadm tests the udev rule in udev/ (tests/tests/systemd_units.rs)
#   age          the migration tests open tufkey's bundles with the standard age tool
#   expect       ... and type its passphrase (age reads it from a terminal only)
#   groff-base   groff renders the man pages tufkey and tufkeyd generate
#   golang-go, golang-google-grpc-dev   grpc-go as Debian ships it, for the standard
#                gRPC clients test (tests/go/grpc_probe.go, built in GOPATH mode)
# plus what scripts/notary/install.sh (notary) and scripts/vcard/install.sh install:
# pcscd, vsmartcard-vpcd, libclang-dev, and libpcsclite-dev + pkg-config (every build
# of tufkeyd links libpcsclite; scripts/tufkeyd installs those two as well).
# scripts/dct/install.sh: docker-registry, skopeo, faketime (and the docker CLI if none).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

missing=()
command -v keyctl >/dev/null || missing+=(keyutils)
command -v setpriv >/dev/null || missing+=(util-linux)
command -v useradd >/dev/null || missing+=(passwd)
command -v strace >/dev/null || missing+=(strace)
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v udevadm >/dev/null || missing+=(udev)
command -v age >/dev/null || missing+=(age)
command -v expect >/dev/null || missing+=(expect)
command -v groff >/dev/null || missing+=(groff-base)
# the system root certificates tufkey dct trusts when given no CA (tests/tests/dct_transport.rs)
[ -f /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
command -v go >/dev/null || missing+=(golang-go)
[ -d /usr/share/gocode/src/google.golang.org/grpc ] || missing+=(golang-google-grpc-dev)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql) # tests/src/postgres.rs: initdb, pg_ctl, pg_dump
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq </dev/null
    # postgresql's package would start (and enable) a cluster of its own: the tests make
    # throwaway ones, so package services are not started here (policy-rc.d 101).
    if [[ " ${missing[*]} " == *" postgresql "* && ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get install -y -qq "${missing[@]}" </dev/null
    if [[ "$(trap -p EXIT)" == *policy-rc.d* ]]; then
        rm -f /usr/sbin/policy-rc.d
        trap - EXIT
    fi
fi
bash scripts/notary/install.sh </dev/null
bash scripts/vcard/install.sh </dev/null
bash scripts/dct/install.sh </dev/null
