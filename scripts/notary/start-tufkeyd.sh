#!/usr/bin/env bash
# start-tufkeyd.sh DIR PORT — start tufkeyd as the Notary signing service, with the
# same contract as start-signer.sh (so `SIGNER_START=scripts/notary/start-tufkeyd.sh
# scripts/notary/selftest.sh` runs the whole Notary flow against tufkeyd).
#
#  * mTLS on 127.0.0.1:PORT with DIR/signer.crt + DIR/signer.key, client certificates
#    must chain to DIR/ca.crt (--listen-tcp/--tls-cert/--tls-key/--tls-client-ca);
#    TUFKEY_ALLOW_SUBJECTS="cn1 cn2" (default: notary-server, the CN of
#    DIR/server-client.crt) adds --tls-allow-subject for each CN: the Notary API for
#    those certificates and nothing else (tufkeyd refuses --listen-tcp without a TLS
#    client named; TUFKEY_POLICY=FILE passes --policy FILE instead).
#  * a fresh software keystore in DIR/tufkeyd-store, Unix socket DIR/tufkeyd.sock,
#    passphrase from TUFKEY_PASSPHRASE (default: a fixed test value), no OS keyring.
#  * writes DIR/tufkeyd.pid and DIR/tufkeyd.log; returns once the Unix socket exists
#    and an mTLS handshake with DIR/client.crt succeeds on the port.
# Env: TUFKEYD_BIN (default: $TUFKEY_BIN_DIR/tufkeyd, else <repo>/target/debug/tufkeyd),
#      RUST_LOG (default warn), WAIT_SECS (default 20).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
usage="usage: start-tufkeyd.sh DIR PORT"
DIR=$(cd "${1:?$usage}" && pwd)
PORT=${2:?$usage}
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${TUFKEYD_BIN:-${TUFKEY_BIN_DIR:-$ROOT/target/debug}/tufkeyd}
WAIT_SECS=${WAIT_SECS:-20}
[ -x "$BIN" ] || die "no tufkeyd at $BIN (run cargo build --bins, or set TUFKEYD_BIN)"
for f in ca.crt signer.crt signer.key; do [ -f "$DIR/$f" ] || die "missing $DIR/$f (run make-certs.sh)"; done
stop_pidfile "$DIR/tufkeyd.pid"

subjects=()
if [ -n "${TUFKEY_POLICY:-}" ]; then
  subjects+=(--policy "$TUFKEY_POLICY")
else
  for cn in ${TUFKEY_ALLOW_SUBJECTS:-notary-server}; do subjects+=(--tls-allow-subject "$cn"); done
fi
TUFKEY_PASSPHRASE=${TUFKEY_PASSPHRASE:-notary-e2e-passphrase} RUST_LOG=${RUST_LOG:-warn} \
  setsid "$BIN" --no-keyring --store "$DIR/tufkeyd-store" --socket "$DIR/tufkeyd.sock" \
  --listen-tcp "127.0.0.1:$PORT" --tls-cert "$DIR/signer.crt" --tls-key "$DIR/signer.key" \
  --tls-client-ca "$DIR/ca.crt" "${subjects[@]}" >"$DIR/tufkeyd.log" 2>&1 </dev/null &
pid=$!
echo "$pid" > "$DIR/tufkeyd.pid"

fail() {
  echo "---- $DIR/tufkeyd.log" >&2; tail -n 30 "$DIR/tufkeyd.log" >&2 || true
  stop_pidfile "$DIR/tufkeyd.pid"
  die "$*"
}
rc=0; wait_port 127.0.0.1 "$PORT" "$WAIT_SECS" "$pid" || rc=$?
[ "$rc" -eq 2 ] && fail "tufkeyd exited during startup"
[ "$rc" -ne 0 ] && fail "tufkeyd did not listen on 127.0.0.1:$PORT within ${WAIT_SECS}s"
if [ -f "$DIR/client.crt" ]; then
  # No -servername: notary-server dialling an IP sends no SNI either.
  openssl s_client -connect "127.0.0.1:$PORT" -noservername -alpn h2 -verify_ip 127.0.0.1 \
      -CAfile "$DIR/ca.crt" -cert "$DIR/client.crt" -key "$DIR/client.key" \
      -verify_return_error -brief </dev/null >"$DIR/tufkeyd.probe" 2>&1 \
    || { cat "$DIR/tufkeyd.probe" >&2; fail "mTLS handshake with tufkeyd on 127.0.0.1:$PORT failed"; }
fi
echo "tufkeyd pid $pid listening on 127.0.0.1:$PORT (mTLS) and $DIR/tufkeyd.sock"
