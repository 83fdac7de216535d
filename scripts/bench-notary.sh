#!/usr/bin/env bash
# bench-notary.sh — tufkeyd vs the real notary-signer, side by side, same load tool.
#
# Starts notary-signer (0.7, memory storage, log level error) and tufkeyd (release
# build, software keystore) on loopback with the same test PKI and mutual TLS, then
# runs, for each concurrency level and each server,
#   tufkey bench --protocol notary --addr https://127.0.0.1:PORT --tls-ca ca.crt
#                --tls-cert client.crt --tls-key client.key --concurrency C --duration D
#                --payload-bytes 512 --json
# (one CreateKey("ecdsa"), then Sign of the same 512-byte payload back to back, one
# connection per worker), and prints a markdown table with the ratio
# tufkeyd / notary-signer. Not a test: numbers depend on the machine.
#
# Env: DURATION (seconds per run, default 10), CONCURRENCY (default "1 16"),
#      BUILD=0 to skip `cargo build --release --bins`,
#      TUFKEY_BIN_DIR (default ${CARGO_TARGET_DIR:-<repo>/target}/release),
#      KEEP=1 to keep the temp dir (certs, logs, JSON results).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
. "$HERE/notary/lib.sh"
DURATION=${DURATION:-10}
CONCURRENCY=${CONCURRENCY:-1 16}
BIN_DIR=${TUFKEY_BIN_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/release}
PAYLOAD_BYTES=512

command -v notary-signer >/dev/null || die "notary-signer missing: run scripts/notary/install.sh"
if [ "${BUILD:-1}" != 0 ]; then
  (cd "$ROOT" && cargo build --release --bins --quiet)
fi
for b in tufkeyd tufkey; do [ -x "$BIN_DIR/$b" ] || die "no $BIN_DIR/$b (cargo build --release --bins)"; done

T=$(mktemp -d /tmp/bench-notary.XXXXXX)
cleanup() {
  stop_pidfile "$T"/*.pid
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT
"$HERE/notary/make-certs.sh" "$T" >/dev/null
SIGNER_PORT=$(free_port)
NOTARY_LOG_LEVEL=error "$HERE/notary/start-signer.sh" "$T" "$SIGNER_PORT" >/dev/null
TUFKEYD_PORT=$(free_port)
TUFKEYD_BIN=$BIN_DIR/tufkeyd RUST_LOG=warn "$HERE/notary/start-tufkeyd.sh" "$T" "$TUFKEYD_PORT" >/dev/null

# bench NAME PORT CONCURRENCY SECS — one run, JSON to $T/NAME-cC.json
bench() {
  "$BIN_DIR/tufkey" bench --protocol notary --addr "https://127.0.0.1:$2" \
    --tls-ca "$T/ca.crt" --tls-cert "$T/client.crt" --tls-key "$T/client.key" \
    --concurrency "$3" --duration "$4" --payload-bytes "$PAYLOAD_BYTES" --json
}
field() { jq -r "$2" "$T/$1.json"; }
ratio() { python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print(f'{a / b:.2f}' if b else 'n/a')" "$1" "$2"; }

# Warm both up (TLS session, key cache, allocator) before measuring.
for name_port in "notary-signer:$SIGNER_PORT" "tufkeyd:$TUFKEYD_PORT"; do
  bench "${name_port%%:*}" "${name_port##*:}" 4 1 >/dev/null
done

for c in $CONCURRENCY; do
  for name_port in "notary-signer:$SIGNER_PORT" "tufkeyd:$TUFKEYD_PORT"; do
    name=${name_port%%:*}
    bench "$name" "${name_port##*:}" "$c" "$DURATION" > "$T/$name-c$c.json"
    errors=$(field "$name-c$c" .errors)
    [ "$errors" = 0 ] || die "$name at concurrency $c: $errors errors, first: $(field "$name-c$c" .first_error)"
  done
done

echo "tufkey bench --protocol notary, ${DURATION}s per run, ${PAYLOAD_BYTES}-byte payload, mTLS on loopback, $(nproc) CPUs ($(uname -m))"
echo
echo "| concurrency | server | signs/s | p50 ms | p99 ms |"
echo "| ---: | --- | ---: | ---: | ---: |"
for c in $CONCURRENCY; do
  for name in notary-signer tufkeyd; do
    printf '| %s | %s | %.0f | %.3f | %.3f |\n' "$c" "$name" \
      "$(field "$name-c$c" .signs_per_sec)" "$(field "$name-c$c" .p50_ms)" "$(field "$name-c$c" .p99_ms)"
  done
  printf '| %s | **tufkeyd / notary-signer** | **%s×** | %s× | **%s×** |\n' "$c" \
    "$(ratio "$(field "tufkeyd-c$c" .signs_per_sec)" "$(field "notary-signer-c$c" .signs_per_sec)")" \
    "$(ratio "$(field "tufkeyd-c$c" .p50_ms)" "$(field "notary-signer-c$c" .p50_ms)")" \
    "$(ratio "$(field "tufkeyd-c$c" .p99_ms)" "$(field "notary-signer-c$c" .p99_ms)")"
done
