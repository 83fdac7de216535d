#!/usr/bin/env bash
# Install what the Docker Content Trust end-to-end tests (tests/src/dct.rs) need, from
# Debian 12 packages; idempotent, non-interactive, waits for a held apt/dpkg lock:
#   docker-registry  the distribution registry 2.8 (`docker-registry serve CONFIG`); the
#                    tests run their own instance, so the packaged service is kept from
#                    starting and left disabled
#   skopeo           copies the test's OCI layout into that registry, reads manifests back
#   faketime         libfaketime: run a client as if it were days later
#   docker.io        ONLY when no `docker` is on PATH: the tests use the docker CLI alone
#                    (`docker trust inspect`, no daemon); dockerd/containerd are kept from
#                    starting and left disabled
# plus curl and python3 (tests/python/oci_layout.py, fake_notary_server.py: stdlib only).
set -euo pipefail
need=()
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
command -v faketime >/dev/null 2>&1 || need+=(faketime)
command -v docker >/dev/null 2>&1 || need+=(docker.io)
command -v curl >/dev/null 2>&1 || need+=(curl)
[ -x /usr/bin/python3 ] || need+=(python3)

# Services a package may have enabled: stop (if a running systemd has them) and disable.
services=(docker-registry docker docker.socket containerd)
quiet_services() {
  command -v systemctl >/dev/null 2>&1 || return 0
  local unit
  for unit in "${services[@]}"; do
    systemctl list-unit-files "$unit.service" "$unit" >/dev/null 2>&1 || continue
    if [ -d /run/systemd/system ]; then
      systemctl disable --now "$unit" >/dev/null 2>&1 || true
    else
      systemctl disable "$unit" >/dev/null 2>&1 || true
    fi
  done
}

if [ "${#need[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  APT_OPTS=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
  # Keep maintainer scripts from starting services (invoke-rc.d / deb-systemd-invoke
  # honour policy-rc.d exit 101); an existing policy-rc.d is left as it is.
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# scripts/dct/install.sh: no service starts during this install\nexit 101\n' \
      | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  cleanup() { [ "$made_policy" = 1 ] && $SUDO rm -f /usr/sbin/policy-rc.d; return 0; }
  trap cleanup EXIT
  if ! apt-cache show docker-registry skopeo faketime >/dev/null 2>&1 \
      || ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
    $SUDO apt-get "${APT_OPTS[@]}" update -qq </dev/null
  fi
  echo "scripts/dct/install.sh: installing ${need[*]}"
  $SUDO apt-get "${APT_OPTS[@]}" install -y -qq --no-install-recommends "${need[@]}" </dev/null
fi
[ "$(id -u)" -eq 0 ] && quiet_services

for b in docker-registry skopeo faketime docker curl; do
  command -v "$b" >/dev/null || { echo "scripts/dct/install.sh: $b missing after install" >&2; exit 1; }
done
# The tests need `docker trust` from the CLI alone (no daemon, no socket).
if ! DOCKER_HOST=unix:///nonexistent/docker.sock docker trust inspect --help >/dev/null 2>&1; then
  echo "scripts/dct/install.sh: this docker CLI has no working 'docker trust inspect'" >&2
  exit 1
fi
echo "scripts/dct/install.sh: ok (docker-registry, skopeo, faketime, $(docker --version))"
