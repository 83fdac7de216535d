#!/usr/bin/env bash
# Install the real Notary 0.7.0 (Debian 12 package `notary`: notary, notary-server,
# notary-signer) plus the tools the scripts in this folder use (openssl, jq, curl,
# python3). Idempotent and non-interactive; waits for a held apt/dpkg lock.
set -euo pipefail
need=()
command -v notary >/dev/null 2>&1 && command -v notary-server >/dev/null 2>&1 \
  && command -v notary-signer >/dev/null 2>&1 || need+=(notary)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v jq >/dev/null 2>&1 || need+=(jq)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [ "${#need[@]}" -eq 0 ]; then
  echo "install.sh: notary, openssl, jq, curl, python3 already present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
# Update the lists only when the package is unknown to apt (fresh machine).
if ! apt-cache show notary >/dev/null 2>&1 || ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
  $SUDO apt-get "${APT_OPTS[@]}" update -qq
fi
echo "install.sh: installing ${need[*]}"
$SUDO apt-get "${APT_OPTS[@]}" install -y -qq --no-install-recommends "${need[@]}"
for b in notary notary-server notary-signer openssl jq curl; do
  command -v "$b" >/dev/null || { echo "install.sh: $b missing after install" >&2; exit 1; }
done
echo "install.sh: ok"
