#!/usr/bin/env bash
# start-server.sh DIR PORT SIGNER_HOST SIGNER_PORT — start the real notary-server (0.7.0)
# in the background, using whatever answers the Notary signer gRPC API at
# SIGNER_HOST:SIGNER_PORT as its trust service (the real notary-signer, or tufkeyd
# listening there with the same certificates).
#
#  * HTTPS on 127.0.0.1:PORT with DIR/server.crt + DIR/server.key (the notary CLI uses
#    --tlscacert DIR/ca.crt). No auth, storage backend "memory".
#  * trust_service: type remote, hostname SIGNER_HOST, port SIGNER_PORT, key_algorithm
#    ecdsa, mTLS: verifies the signer's certificate against DIR/ca.crt ONLY
#    (ExclusiveRootPools) for the name SIGNER_HOST (use 127.0.0.1 or localhost: both are
#    in signer.crt's SAN), presents DIR/server-client.crt + .key.
#    Override with TRUST_CA, TRUST_CLIENT_CERT, TRUST_CLIENT_KEY (e.g. DIR/other-client.*
#    for a "foreign client certificate is refused" test).
#  * writes DIR/notary-server.json, DIR/notary-server.log, DIR/notary-server.pid
#  * before starting, unless SIGNER_PREFLIGHT=0: an openssl mTLS handshake to
#    SIGNER_HOST:SIGNER_PORT with the trust client cert, verifying the signer's cert
#    against TRUST_CA for the name SIGNER_HOST (catches PKI / name mistakes early).
#  * returns once https://127.0.0.1:PORT/_notary_server/health answers 200. NOTE: the
#    server's "Trust operational" check (gRPC grpc.health.v1.Health/Check for
#    "grpc.health.v1.Health.KeyManagement" then "grpc.health.v1.Health.Signer") is a
#    docker/distribution PeriodicChecker: it first runs 10 s AFTER start; until then
#    the endpoint says 200 "{}" whatever the signer does. WAIT_TRUST=1 waits for that
#    first check (start + 11 s) and requires 200 after it, i.e. notary-server's own
#    health client accepted the signer. Set WAIT_HEALTHY=0 to only wait for the
#    HTTPS listener (for tests where the signer is meant to be down).
# Env: NOTARY_SERVER_BIN (default notary-server), NOTARY_LOG_LEVEL (default info),
#      WAIT_SECS (default 30), AUTH_JSON (default: none, i.e. no auth): the JSON value
#      of the config's "auth" key, e.g. {"type":"token","options":{"realm":..,
#      "service":..,"issuer":..,"rootcertbundle":..}} (docker distribution's token auth).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
usage="usage: start-server.sh DIR PORT SIGNER_HOST SIGNER_PORT"
DIR=$(cd "${1:?$usage}" && pwd)
PORT=${2:?$usage}
SIGNER_HOST=${3:?$usage}
SIGNER_PORT=${4:?$usage}
BIN=${NOTARY_SERVER_BIN:-notary-server}
WAIT_SECS=${WAIT_SECS:-30}
TRUST_CA=${TRUST_CA:-$DIR/ca.crt}
TRUST_CLIENT_CERT=${TRUST_CLIENT_CERT:-$DIR/server-client.crt}
TRUST_CLIENT_KEY=${TRUST_CLIENT_KEY:-$DIR/server-client.key}
for f in "$DIR/server.crt" "$DIR/server.key" "$TRUST_CA" "$TRUST_CLIENT_CERT" "$TRUST_CLIENT_KEY"; do
  [ -f "$f" ] || die "missing $f (run make-certs.sh)"
done
stop_pidfile "$DIR/notary-server.pid"

if [ "${SIGNER_PREFLIGHT:-1}" != 0 ] && [ "${WAIT_HEALTHY:-1}" != 0 ]; then
  verify_opt=(-verify_hostname "$SIGNER_HOST")
  [[ $SIGNER_HOST =~ ^[0-9.]+$ ]] && verify_opt=(-verify_ip "$SIGNER_HOST")
  if ! openssl s_client -connect "$SIGNER_HOST:$SIGNER_PORT" -alpn h2 \
      -CAfile "$TRUST_CA" -cert "$TRUST_CLIENT_CERT" -key "$TRUST_CLIENT_KEY" \
      "${verify_opt[@]}" -verify_return_error -brief </dev/null >"$DIR/signer-preflight.log" 2>&1; then
    cat "$DIR/signer-preflight.log" >&2
    die "preflight: no verified mTLS handshake with the signer at $SIGNER_HOST:$SIGNER_PORT"
  fi
fi

auth_entry=""
[ -n "${AUTH_JSON:-}" ] && auth_entry=$'\n'"  \"auth\": $AUTH_JSON,"
cat > "$DIR/notary-server.json" <<JSON
{
  "server": {
    "http_addr": "127.0.0.1:$PORT",
    "tls_cert_file": "$DIR/server.crt",
    "tls_key_file": "$DIR/server.key"
  },
  "trust_service": {
    "type": "remote",
    "hostname": "$SIGNER_HOST",
    "port": "$SIGNER_PORT",
    "tls_ca_file": "$TRUST_CA",
    "tls_client_cert": "$TRUST_CLIENT_CERT",
    "tls_client_key": "$TRUST_CLIENT_KEY",
    "key_algorithm": "ecdsa"
  },
  "logging": { "level": "${NOTARY_LOG_LEVEL:-info}" },$auth_entry
  "storage": { "backend": "memory" }
}
JSON

started=$(date +%s.%N)
setsid "$BIN" -config "$DIR/notary-server.json" >"$DIR/notary-server.log" 2>&1 </dev/null &
pid=$!
echo "$pid" > "$DIR/notary-server.pid"

fail() {
  echo "---- $DIR/notary-server.log" >&2; tail -n 30 "$DIR/notary-server.log" >&2 || true
  stop_pidfile "$DIR/notary-server.pid"
  die "$*"
}
rc=0; wait_port 127.0.0.1 "$PORT" "$WAIT_SECS" "$pid" || rc=$?
[ "$rc" -eq 2 ] && fail "notary-server exited during startup"
[ "$rc" -ne 0 ] && fail "notary-server did not listen on 127.0.0.1:$PORT within ${WAIT_SECS}s"

if [ "${WAIT_HEALTHY:-1}" != 0 ]; then
  url="https://127.0.0.1:$PORT/_notary_server/health"
  ok=0
  for ((i = 0; i < WAIT_SECS * 5; i++)); do
    kill -0 "$pid" 2>/dev/null || fail "notary-server exited during startup"
    code=$(curl -s -o "$DIR/notary-server.health" -w '%{http_code}' --cacert "$DIR/ca.crt" "$url" || true)
    if [ "$code" = 200 ]; then ok=1; break; fi
    sleep 0.2
  done
  [ "$ok" = 1 ] || fail "$url did not answer 200 within ${WAIT_SECS}s (last: $code $(cat "$DIR/notary-server.health" 2>/dev/null))"
  if [ "${WAIT_TRUST:-0}" != 0 ]; then
    # Sleep until the first periodic trust check (10 s after start) has certainly run.
    left=$(python3 -c "import sys,time; print(max(0.0, $started + 11.0 - time.time()))")
    sleep "$left"
    code=$(curl -s -o "$DIR/notary-server.health" -w '%{http_code}' --cacert "$DIR/ca.crt" "$url" || true)
    [ "$code" = 200 ] || fail "trust service check failed after first health period: $code $(cat "$DIR/notary-server.health")"
    echo "notary-server: trust service $SIGNER_HOST:$SIGNER_PORT passed notary-server's gRPC health check"
  fi
fi
echo "notary-server pid $pid serving https://127.0.0.1:$PORT (trust service $SIGNER_HOST:$SIGNER_PORT)"
