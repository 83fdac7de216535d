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
# connection per worker), reads each SERVER's CPU time (utime+stime from
# /proc/PID/stat) around the run, and prints a markdown table: signs/s, p50, p99 and
# server CPU µs per Sign, with the ratios tufkeyd / notary-signer. On 2 cores the load
# tool competes with the servers, so the CPU column is the fair comparison.
# Not a test: numbers depend on the machine.
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
TUFKEYD_BIN=$BIN_DIR/tufkeyd TUFKEY_ALLOW_SUBJECTS="notary-server tufkey-test-client" \
  RUST_LOG=warn "$HERE/notary/start-tufkeyd.sh" "$T" "$TUFKEYD_PORT" >/dev/null

declare -A SERVER_PID=([notary-signer]=$(cat "$T/notary-signer.pid") [tufkeyd]=$(cat "$T/tufkeyd.pid"))
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# bench NAME PORT CONCURRENCY SECS — one run, JSON on stdout
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
    before=$(cpu_ticks "${SERVER_PID[$name]}")
    bench "$name" "${name_port##*:}" "$c" "$DURATION" > "$T/run.json"
    after=$(cpu_ticks "${SERVER_PID[$name]}")
    jq --argjson ticks "$((after - before))" --argjson hz "$(getconf CLK_TCK)" \
      '. + {server_cpu_us_per_sign: (if .signs > 0 then $ticks / $hz * 1e6 / .signs else null end)}' \
      "$T/run.json" > "$T/$name-c$c.json"
    errors=$(field "$name-c$c" .errors)
    [ "$errors" = 0 ] || die "$name at concurrency $c: $errors errors, first: $(field "$name-c$c" .first_error)"
  done
done

echo "tufkey bench --protocol notary, ${DURATION}s per run, ${PAYLOAD_BYTES}-byte payload, mTLS on loopback, $(nproc) CPUs ($(uname -m))"
echo
echo "| concurrency | server | signs/s | p50 ms | p99 ms | server CPU µs/Sign |"
echo "| ---: | --- | ---: | ---: | ---: | ---: |"
for c in $CONCURRENCY; do
  for name in notary-signer tufkeyd; do
    printf '| %s | %s | %.0f | %.3f | %.3f | %.1f |\n' "$c" "$name" \
      "$(field "$name-c$c" .signs_per_sec)" "$(field "$name-c$c" .p50_ms)" "$(field "$name-c$c" .p99_ms)" \
      "$(field "$name-c$c" .server_cpu_us_per_sign)"
  done
  printf '| %s | **tufkeyd / notary-signer** | **%s×** | %s× | **%s×** | **%s×** |\n' "$c" \
    "$(ratio "$(field "tufkeyd-c$c" .signs_per_sec)" "$(field "notary-signer-c$c" .signs_per_sec)")" \
    "$(ratio "$(field "tufkeyd-c$c" .p50_ms)" "$(field "notary-signer-c$c" .p50_ms)")" \
    "$(ratio "$(field "tufkeyd-c$c" .p99_ms)" "$(field "notary-signer-c$c" .p99_ms)")" \
    "$(ratio "$(field "tufkeyd-c$c" .server_cpu_us_per_sign)" "$(field "notary-signer-c$c" .server_cpu_us_per_sign)")"
done
