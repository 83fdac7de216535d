#!/usr/bin/env bash
# bench-audit.sh BASE_BIN_DIR — what the access policy and the audit log cost.
#
# Runs the same load against two release builds in one run: BASE (a tufkeyd without
# policy and audit, e.g. built from the commit before them) and NEW (this tree:
# every call authorised, every signature's audit record fsynced before the reply).
# For each transport (Unix socket: native SignRaw; mutual TLS: Notary Sign) and
# each concurrency it runs, alternating servers,
#   tufkey bench --concurrency C --duration D --payload-bytes 512 --json
# and reads the server's CPU time (utime+stime from /proc/PID/stat) around the run,
# so the table shows throughput, p99 and server CPU per signature, and NEW/BASE.
# On 2 cores the load tool competes with the server: read the CPU column too.
# Not a test: numbers depend on the machine.
#
# Build BASE like this (the commit before policy and audit):
#   git worktree add /tmp/tufkey-base 59364da
#   (cd /tmp/tufkey-base && CARGO_TARGET_DIR=/tmp/tufkey-base-target cargo build --release --bins)
#   scripts/bench-audit.sh /tmp/tufkey-base-target/release
# Env: DURATION (seconds per run, default 5), CONCURRENCY (default "1 16"),
#      NEW_BIN_DIR (default <repo>/target/release), KEEP=1 keeps the temp dir.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
. "$HERE/notary/lib.sh"
BASE_BIN_DIR=${1:?usage: bench-audit.sh BASE_BIN_DIR}
NEW_BIN_DIR=${NEW_BIN_DIR:-$ROOT/target/release}
DURATION=${DURATION:-5}
CONCURRENCY=${CONCURRENCY:-1 16}
PAYLOAD_BYTES=512
CLIENT=$NEW_BIN_DIR/tufkey
for b in "$BASE_BIN_DIR/tufkeyd" "$NEW_BIN_DIR/tufkeyd" "$CLIENT"; do
  [ -x "$b" ] || die "no $b (cargo build --release --bins)"
done

T=$(mktemp -d /tmp/bench-audit.XXXXXX)
cleanup() {
  stop_pidfile "$T"/*/tufkeyd.pid
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT
"$HERE/notary/make-certs.sh" "$T" >/dev/null
declare -A PORT
for name in base new; do
  mkdir -p "$T/$name"
  cp "$T"/*.crt "$T"/*.key "$T/$name/"
  PORT[$name]=$(free_port)
  bin_dir=$BASE_BIN_DIR
  [ "$name" = new ] && bin_dir=$NEW_BIN_DIR
  TUFKEYD_BIN=$bin_dir/tufkeyd TUFKEY_ALLOW_SUBJECTS="notary-server tufkey-test-client" \
    RUST_LOG=warn "$HERE/notary/start-tufkeyd.sh" "$T/$name" "${PORT[$name]}" >/dev/null
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run NAME TRANSPORT CONCURRENCY SECS — one bench, JSON + server CPU to $T/NAME-TRANSPORT-cC.json
run() {
  local name=$1 transport=$2 c=$3 secs=$4 pid before after
  pid=$(cat "$T/$name/tufkeyd.pid")
  local args=(bench --concurrency "$c" --duration "$secs" --payload-bytes "$PAYLOAD_BYTES" --json)
  if [ "$transport" = unix ]; then
    args=(--socket "$T/$name/tufkeyd.sock" "${args[@]}")
  else
    args+=(--protocol notary --addr "https://127.0.0.1:${PORT[$name]}"
      --tls-ca "$T/ca.crt" --tls-cert "$T/client.crt" --tls-key "$T/client.key")
  fi
  before=$(cpu_ticks "$pid")
  "$CLIENT" "${args[@]}" > "$T/run.json"
  after=$(cpu_ticks "$pid")
  jq --argjson ticks "$((after - before))" --argjson hz "$(getconf CLK_TCK)" \
    '. + {server_cpu_us_per_sign: (if .signs > 0 then $ticks / $hz * 1e6 / .signs else null end)}' \
    "$T/run.json" > "$T/$name-$transport-c$c.json"
  local errors
  errors=$(jq -r .errors "$T/$name-$transport-c$c.json")
  [ "$errors" = 0 ] || die "$name $transport c=$c: $errors errors, first: $(jq -r .first_error "$T/$name-$transport-c$c.json")"
}
field() { jq -r "$2" "$T/$1.json"; }
ratio() { python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print(f'{a / b:.2f}' if b else 'n/a')" "$1" "$2"; }

for name in base new; do
  run "$name" unix 4 1
  run "$name" tls 4 1
done
for transport in unix tls; do
  for c in $CONCURRENCY; do
    for name in base new; do run "$name" "$transport" "$c" "$DURATION"; done
  done
done

echo "tufkey bench, ${DURATION}s per run, ${PAYLOAD_BYTES}-byte payload, $(nproc) CPUs; base = $BASE_BIN_DIR, new = $NEW_BIN_DIR"
echo
echo "| transport | concurrency | server | signs/s | p99 ms | server CPU µs/sign |"
echo "| --- | ---: | --- | ---: | ---: | ---: |"
for transport in unix tls; do
  for c in $CONCURRENCY; do
    for name in base new; do
      printf '| %s | %s | %s | %.0f | %.3f | %.1f |\n' "$transport" "$c" "$name" \
        "$(field "$name-$transport-c$c" .signs_per_sec)" "$(field "$name-$transport-c$c" .p99_ms)" \
        "$(field "$name-$transport-c$c" .server_cpu_us_per_sign)"
    done
    printf '| %s | %s | **new / base** | **%s×** | %s× | %s× |\n' "$transport" "$c" \
      "$(ratio "$(field "new-$transport-c$c" .signs_per_sec)" "$(field "base-$transport-c$c" .signs_per_sec)")" \
      "$(ratio "$(field "new-$transport-c$c" .p99_ms)" "$(field "base-$transport-c$c" .p99_ms)")" \
      "$(ratio "$(field "new-$transport-c$c" .server_cpu_us_per_sign)" "$(field "base-$transport-c$c" .server_cpu_us_per_sign)")"
  done
done
