#!/usr/bin/env bash
# bench-replicas.sh — one tufkeyd replica against three on the same PostgreSQL, under
# the same load.
#
# Makes a throwaway PostgreSQL cluster (scripts/postgres/cluster.sh) and three tufkeyd
# (release build) keeping their keystore in it, with one shared --secret-file and
# each its own store, socket and mTLS listener on loopback (the test PKI of
# scripts/notary/make-certs.sh). Then, for "1 replica" (--addr R1) and "3 replicas"
# (--addr R1 --addr R2 --addr R3, which tufkey bench spreads its connections over):
#   tufkey bench --addr ... --tls-ca ca.crt --tls-cert client.crt --tls-key client.key
#                --concurrency C --duration D --payload-bytes 512 --json
# (native SignRaw with the bench key, one connection per worker), reading around each
# run the CPU time (utime+stime from /proc/PID/stat) of every replica and of the
# database (the postmaster, its live backends, and the children it reaped:
# cutime+cstime). Prints a markdown table: signs/s, p50, p99, the replicas' CPU µs per
# Sign, the database's CPU µs per Sign and its share of the servers' CPU.
# On 2 cores the load tool competes with the servers, so three replicas cannot be
# faster than one: the CPU per Sign and the database's share are the figures to read,
# not a speed-up. Not a test: numbers depend on the machine.
#
# Env: DURATION (seconds per run, default 10), CONCURRENCY (default 16),
#      BUILD=0 to skip `cargo build --release --bins`,
#      TUFKEY_BIN_DIR (default ${CARGO_TARGET_DIR:-<repo>/target}/release),
#      KEEP=1 to keep the temp dir (certs, logs, JSON results).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
. "$HERE/notary/lib.sh"
DURATION=${DURATION:-10}
CONCURRENCY=${CONCURRENCY:-16}
BIN_DIR=${TUFKEY_BIN_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/release}
PAYLOAD_BYTES=512
REPLICAS=3

if [ "${BUILD:-1}" != 0 ]; then
  (cd "$ROOT" && cargo build --release --bins --quiet)
fi
for b in tufkeyd tufkey; do [ -x "$BIN_DIR/$b" ] || die "no $BIN_DIR/$b (cargo build --release --bins)"; done

T=$(mktemp -d /tmp/bench-replicas.XXXXXX)
cleanup() {
  stop_pidfile "$T"/replica-*.pid
  "$HERE/postgres/cluster.sh" stop "$T/pg" || true
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT
chmod 711 "$T" # the postgres user must reach $T/pg
"$HERE/notary/make-certs.sh" "$T" >/dev/null
URL=$("$HERE/postgres/cluster.sh" start "$T/pg" "$(free_port)")
(umask 077 && openssl rand -hex 32 > "$T/store-secret")
cat > "$T/policy.toml" <<'EOF'
[[grant]]
cert_cn = "tufkey-test-client"
permissions = ["sign", "keys_read", "keys_admin"]
EOF

# One after the other: the first creates the keystore in the database.
ADDRS=()
PIDS=()
for i in $(seq 1 "$REPLICAS"); do
  port=$(free_port)
  mkdir -m 700 "$T/r$i"
  RUST_LOG=warn setsid "$BIN_DIR/tufkeyd" --no-keyring --no-yubikey \
    --store "$T/r$i/store" --socket "$T/r$i/tufkeyd.sock" \
    --postgres-url "$URL" --postgres-password-file "$T/pg/tufkey-password" \
    --secret-file "$T/store-secret" --policy "$T/policy.toml" \
    --listen-tcp "127.0.0.1:$port" --tls-cert "$T/signer.crt" --tls-key "$T/signer.key" \
    --tls-client-ca "$T/ca.crt" >"$T/r$i.log" 2>&1 </dev/null &
  echo $! > "$T/replica-$i.pid"
  PIDS+=($!)
  rc=0; wait_port 127.0.0.1 "$port" 30 "$!" || rc=$?
  [ "$rc" -eq 0 ] || { tail -n 30 "$T/r$i.log" >&2; die "replica $i did not start"; }
  ADDRS+=("https://127.0.0.1:$port")
done
POSTMASTER=$(head -n 1 "$T/pg/cluster/data/postmaster.pid")

replica_ticks() {
  local pid sum=0
  for pid in "${PIDS[@]}"; do sum=$((sum + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done
  echo "$sum"
}
# The postmaster's own and reaped children's time, plus its live children's.
database_ticks() {
  local own children
  own=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$POSTMASTER/stat")
  children=$(cat /proc/[0-9]*/stat 2>/dev/null | awk -v pm="$POSTMASTER" '$4 == pm {s += $14 + $15} END {print s + 0}')
  echo $((own + children))
}

# bench NAME SECS ADDR... — one run, JSON on stdout
bench() {
  local secs=$1 addr args=()
  shift
  for addr in "$@"; do args+=(--addr "$addr"); done
  "$BIN_DIR/tufkey" bench "${args[@]}" --tls-ca "$T/ca.crt" --tls-cert "$T/client.crt" \
    --tls-key "$T/client.key" --concurrency "$CONCURRENCY" --duration "$secs" \
    --payload-bytes "$PAYLOAD_BYTES" --json
}
field() { jq -r "$2" "$T/$1.json"; }
ratio() { python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print(f'{a / b:.2f}' if b else 'n/a')" "$1" "$2"; }

HZ=$(getconf CLK_TCK)
# measure NAME ADDR... — a run with the CPU of replicas and database around it
measure() {
  local name=$1 r0 d0 r1 d1
  shift
  bench 1 "$@" >/dev/null # warm up: connections, TLS, key cache on each replica
  r0=$(replica_ticks); d0=$(database_ticks)
  bench "$DURATION" "$@" > "$T/run.json"
  r1=$(replica_ticks); d1=$(database_ticks)
  jq --argjson r "$((r1 - r0))" --argjson d "$((d1 - d0))" --argjson hz "$HZ" \
    '. + {replica_cpu_us_per_sign: (if .signs > 0 then $r / $hz * 1e6 / .signs else null end),
          database_cpu_us_per_sign: (if .signs > 0 then $d / $hz * 1e6 / .signs else null end),
          database_share: (if $r + $d > 0 then $d / ($r + $d) else 0 end)}' \
    "$T/run.json" > "$T/$name.json"
  local errors
  errors=$(field "$name" .errors)
  [ "$errors" = 0 ] || die "$name: $errors errors, first: $(field "$name" .first_error)"
}

measure one "${ADDRS[0]}"
measure three "${ADDRS[@]}"

echo "tufkey bench (native SignRaw), ${DURATION}s per run, concurrency $CONCURRENCY, ${PAYLOAD_BYTES}-byte payload, mTLS on loopback, PostgreSQL $("$(compgen -G '/usr/lib/postgresql/*/bin' | sort -V | tail -n 1)/postgres" --version | awk '{print $3}'), $(nproc) CPUs ($(uname -m))"
echo
echo "| setup | signs/s | p50 ms | p99 ms | replicas' CPU µs/Sign | database CPU µs/Sign | database share of server CPU |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for name in one three; do
  label=$([ "$name" = one ] && echo "1 replica" || echo "$REPLICAS replicas")
  printf '| %s | %.0f | %.3f | %.3f | %.1f | %.2f | %.1f %% |\n' "$label" \
    "$(field "$name" .signs_per_sec)" "$(field "$name" .p50_ms)" "$(field "$name" .p99_ms)" \
    "$(field "$name" .replica_cpu_us_per_sign)" "$(field "$name" .database_cpu_us_per_sign)" \
    "$(jq -r '.database_share * 100' "$T/$name.json")"
done
printf '| **3 / 1** | %s× | %s× | %s× | %s× | | |\n' \
  "$(ratio "$(field three .signs_per_sec)" "$(field one .signs_per_sec)")" \
  "$(ratio "$(field three .p50_ms)" "$(field one .p50_ms)")" \
  "$(ratio "$(field three .p99_ms)" "$(field one .p99_ms)")" \
  "$(ratio "$(field three .replica_cpu_us_per_sign)" "$(field one .replica_cpu_us_per_sign)")"
per_endpoint=$(jq -c '.per_endpoint // empty' "$T/three.json")
[ -z "$per_endpoint" ] || { echo; echo "signatures per replica (3 replicas): $per_endpoint"; }
