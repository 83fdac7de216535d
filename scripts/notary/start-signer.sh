#!/usr/bin/env bash
# start-signer.sh DIR PORT — start the real notary-signer (0.7.0, Debian) in the background.
#
#  * DIR is a directory made by make-certs.sh; the signer uses DIR/signer.crt,
#    DIR/signer.key as its TLS identity and REQUIRES a client certificate that chains
#    to DIR/ca.crt (server.client_ca_file => tls.RequireAndVerifyClientCert).
#  * gRPC (KeyManagement, Signer, grpc.health.v1.Health) on 127.0.0.1:PORT, mTLS only.
#  * storage backend "memory": keys live only in the process (the Debian build has no
#    sqlite driver; the memory backend needs no passphrase alias, i.e. neither
#    NOTARY_SIGNER_DEFAULT_ALIAS nor a NOTARY_SIGNER_<ALIAS> passphrase variable).
#  * writes DIR/notary-signer.json (config), DIR/notary-signer.log, DIR/notary-signer.pid
#  * returns once the port accepts TCP and an mTLS handshake with DIR/client.crt succeeds.
# Env: NOTARY_SIGNER_BIN (default notary-signer), NOTARY_LOG_LEVEL (default info),
#      WAIT_SECS (default 20).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
DIR=$(cd "${1:?usage: start-signer.sh DIR PORT}" && pwd)
PORT=${2:?usage: start-signer.sh DIR PORT}
BIN=${NOTARY_SIGNER_BIN:-notary-signer}
WAIT_SECS=${WAIT_SECS:-20}
for f in ca.crt signer.crt signer.key; do [ -f "$DIR/$f" ] || die "missing $DIR/$f (run make-certs.sh)"; done
stop_pidfile "$DIR/notary-signer.pid"

cat > "$DIR/notary-signer.json" <<JSON
{
  "server": {
    "grpc_addr": "127.0.0.1:$PORT",
    "tls_cert_file": "$DIR/signer.crt",
    "tls_key_file": "$DIR/signer.key",
    "client_ca_file": "$DIR/ca.crt"
  },
  "logging": { "level": "${NOTARY_LOG_LEVEL:-info}" },
  "storage": { "backend": "memory" }
}
JSON

# setsid: own process group, so the caller's Ctrl-C / job control does not reach it.
setsid "$BIN" -config "$DIR/notary-signer.json" >"$DIR/notary-signer.log" 2>&1 </dev/null &
pid=$!
echo "$pid" > "$DIR/notary-signer.pid"

rc=0; wait_port 127.0.0.1 "$PORT" "$WAIT_SECS" "$pid" || rc=$?
if [ "$rc" -ne 0 ]; then
  echo "---- $DIR/notary-signer.log" >&2; tail -n 30 "$DIR/notary-signer.log" >&2 || true
  stop_pidfile "$DIR/notary-signer.pid"
  [ "$rc" -eq 2 ] && die "notary-signer exited during startup"
  die "notary-signer did not listen on 127.0.0.1:$PORT within ${WAIT_SECS}s"
fi
# Prove the mTLS listener is really up (handshake with a client cert from the CA).
if [ -f "$DIR/client.crt" ]; then
  if ! openssl s_client -connect "127.0.0.1:$PORT" -servername localhost -alpn h2 \
      -CAfile "$DIR/ca.crt" -cert "$DIR/client.crt" -key "$DIR/client.key" \
      -verify_return_error -brief </dev/null >"$DIR/notary-signer.probe" 2>&1; then
    cat "$DIR/notary-signer.probe" >&2
    stop_pidfile "$DIR/notary-signer.pid"
    die "mTLS handshake with notary-signer on 127.0.0.1:$PORT failed"
  fi
fi
echo "notary-signer pid $pid listening on 127.0.0.1:$PORT (mTLS, memory storage)"
