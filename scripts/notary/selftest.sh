#!/usr/bin/env bash
# selftest.sh — the whole Notary end-to-end flow with a pluggable signing service.
#
#   scripts/notary/selftest.sh            # real notary-signer as the trust service
#   SIGNER_START=path/to/start-x.sh scripts/notary/selftest.sh
#                                         # any signer started as `start-x.sh DIR PORT`
#                                         # (same contract as start-signer.sh: use
#                                         # DIR/signer.{crt,key}, require client certs from
#                                         # DIR/ca.crt, listen on 127.0.0.1:PORT, write a
#                                         # DIR/*.pid file, return when up)
#
# In a temp dir (kept on failure, or always with KEEP=1): make-certs.sh; the signer on a
# free loopback port; notary-server A (client cert from the CA) and notary-server B
# (client cert from the OTHER CA) on free ports, both pointed at the signer;
# client-flow.sh against A; then, once notary-server's first periodic trust check has
# run (10 s after start), A's /_notary_server/health must be 200 (its gRPC health
# client accepted the signer) and B's must be 503 (the signer refused the foreign
# client certificate). Every process is stopped by its pid on exit. Exit 0 = pass.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
T0=$(date +%s%N)
ms() { echo $((($(date +%s%N) - T0) / 1000000)); }
for b in notary notary-server notary-signer openssl curl python3; do
  command -v "$b" >/dev/null || die "$b not found: run $HERE/install.sh"
done

T=$(mktemp -d /tmp/notary-selftest.XXXXXX)
FOREIGN=$T/foreign
ok=0
cleanup() {
  stop_pidfile "$FOREIGN"/*.pid "$T"/*.pid
  if [ "$ok" = 1 ] && [ "${KEEP:-0}" = 0 ]; then rm -rf "$T"; else echo "selftest: files kept in $T" >&2; fi
  # A closing line CI runners recognise.
  if [ "$ok" = 1 ]; then echo "selftest: 1 passed, 0 failed"; else echo "selftest: 0 passed, 1 failed"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$HERE/make-certs.sh" "$T" >/dev/null
mkdir -p "$FOREIGN"
cp "$T"/*.crt "$T"/*.key "$FOREIGN"/
echo "selftest: certs in $T ($(ms) ms)"

SIGNER_PORT=$(free_port)
"${SIGNER_START:-$HERE/start-signer.sh}" "$T" "$SIGNER_PORT"
echo "selftest: signer up on 127.0.0.1:$SIGNER_PORT ($(ms) ms)"

SERVER_PORT=$(free_port)
SERVER_START=$(date +%s.%N)
"$HERE/start-server.sh" "$T" "$SERVER_PORT" 127.0.0.1 "$SIGNER_PORT"
FOREIGN_PORT=$(free_port)
SIGNER_PREFLIGHT=0 TRUST_CLIENT_CERT=$FOREIGN/other-client.crt TRUST_CLIENT_KEY=$FOREIGN/other-client.key \
  "$HERE/start-server.sh" "$FOREIGN" "$FOREIGN_PORT" 127.0.0.1 "$SIGNER_PORT" >/dev/null
echo "selftest: notary-server A on $SERVER_PORT, B (foreign client cert) on $FOREIGN_PORT ($(ms) ms)"

FLOW_T0=$(date +%s%N)
"$HERE/client-flow.sh" "$T" "$SERVER_PORT" "example.com/tufkey/selftest-$$" | tee "$T/client-flow.out"
echo "selftest: client-flow took $((($(date +%s%N) - FLOW_T0) / 1000000)) ms"

# The keys notary-server uses for timestamp/snapshot must have been created in the signer.
if [ -f "$T/notary-signer.log" ] && [ "${NOTARY_LOG_LEVEL:-info}" != error ]; then
  for role in timestamp snapshot; do
    id=$(awk -v r="$role" '$1 == "SIGNER_KEY" && $2 == r { print $3 }' "$T/client-flow.out")
    [ -n "$id" ] || die "client-flow printed no SIGNER_KEY $role"
    grep -q "CreateKey: Created KeyID $id" "$T/notary-signer.log" || die "notary-signer log has no CreateKey for $role key $id"
  done
  echo "selftest: notary-signer's log shows CreateKey for the timestamp and snapshot keys"
fi

# notary-server's trust check first runs 10 s after its start.
left=$(python3 -c "import time; print(max(0.0, $SERVER_START + 11.5 - time.time()))")
echo "selftest: waiting ${left}s for notary-server's first trust health check"
sleep "$left"
health() { curl -s -o "$2" -w '%{http_code}' --cacert "$T/ca.crt" "https://127.0.0.1:$1/_notary_server/health" || true; }
code=$(health "$SERVER_PORT" "$T/health-A.json")
[ "$code" = 200 ] || die "notary-server A health $code: $(cat "$T/health-A.json")"
echo "selftest: notary-server A health 200 $(cat "$T/health-A.json") (signer passed its gRPC health checks)"
code=$(health "$FOREIGN_PORT" "$T/health-B.json")
[ "$code" = 503 ] || die "notary-server B (foreign client cert) health $code, want 503: $(cat "$T/health-B.json")"
echo "selftest: notary-server B health 503 (signer refused the other CA's client cert): $(cut -c1-160 "$T/health-B.json")"

# The signer must still be alive after all that.
for f in "$T"/*.pid; do
  case $f in */notary-server.pid) continue ;; esac
  kill -0 "$(cat "$f")" 2>/dev/null || die "signer ($f) died"
done
ok=1
echo "selftest: PASS in $(ms) ms"
