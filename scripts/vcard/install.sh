#!/usr/bin/env bash
# Install what the virtual YubiKey test environment needs (Debian 12, root).
# Idempotent and non-interactive. Packages:
#   pcscd            PC/SC daemon the yubikey crate talks to
#   vsmartcard-vpcd  pcscd driver with virtual readers that cards join over TCP
#   libclang-dev     bindgen (littlefs2-sys) when building tests/vcard
#   libpcsclite-dev  + pkg-config: link the pcsc crate (probe, yubikey crate)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

pkgs=(pcscd vsmartcard-vpcd libclang-dev libpcsclite-dev pkg-config)
missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if ((${#missing[@]} == 0)); then
    echo "vcard install: all packages present (${pkgs[*]})"
    exit 0
fi
SUDO=()
if [[ $(id -u) -ne 0 ]]; then SUDO=(sudo -n); fi
echo "vcard install: installing ${missing[*]}"
"${SUDO[@]}" apt-get update -q </dev/null
"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
