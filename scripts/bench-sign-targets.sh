#!/usr/bin/env bash
# Signing one 100k-target targets.json: `tufkey sign` as a whole CLI process (file
# in, file out, through a running release tufkeyd) against python-tuf loading,
# signing and writing the same file (Metadata.from_file, sign with a CryptoSigner,
# to_file). Median of RUNS runs each, measured in this one run; prints a table and
# the ratio. Usage: scripts/bench-sign-targets.sh  (env: RUNS=5 TARGETS=100000)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${RUNS:-5}
count=${TARGETS:-100000}

cargo build --release --bins -q
venv=target/tufkey-venv
bash tests/python/setup-venv.sh "$venv"
py="$venv/bin/python"

work=$(mktemp -d /tmp/tufkey-bench.XXXXXX)
daemon_pid=
cleanup() { [[ -n $daemon_pid ]] && kill "$daemon_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$py" tests/python/make_targets.py "$count" "$work/targets.json"
openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null |
    openssl pkcs8 -topk8 -nocrypt -out "$work/python-key.pem"

TUFKEY_PASSPHRASE=bench target/release/tufkeyd --no-keyring --no-yubikey --socket "$work/tufkeyd.sock" \
    --store "$work/store" 2>"$work/tufkeyd.log" &
daemon_pid=$!
for _ in $(seq 600); do [[ -S $work/tufkeyd.sock ]] && break; sleep 0.05; done
[[ -S $work/tufkeyd.sock ]] || { cat "$work/tufkeyd.log" >&2; exit 1; }
tufkey=(target/release/tufkey --socket "$work/tufkeyd.sock")
keyid=$("${tufkey[@]}" key generate --gun bench.example/app --role targets)

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

tufkey_times=()
for _ in $(seq "$runs"); do
    start=$(now)
    "${tufkey[@]}" sign --key "$keyid" "$work/targets.json" --out "$work/signed-tufkey.json"
    tufkey_times+=("$(echo "$(now) - $start" | bc -l)")
done
python_times=()
python_process_times=()
for _ in $(seq "$runs"); do
    start=$(now)
    seconds=$("$py" tests/python/bench_sign.py "$work/targets.json" "$work/python-key.pem" "$work/signed-python.json" |
        "$py" -c 'import json,sys; d=json.load(sys.stdin); print(d["seconds"] - d["import_seconds"])')
    python_process_times+=("$(echo "$(now) - $start" | bc -l)")
    python_times+=("$seconds")
done

t=$(printf '%s\n' "${tufkey_times[@]}" | median)
p=$(printf '%s\n' "${python_times[@]}" | median)
pp=$(printf '%s\n' "${python_process_times[@]}" | median)
size=$(stat -c %s "$work/targets.json")
printf '\n%s targets, %s bytes, median of %s runs\n\n' "$count" "$size" "$runs"
printf '| what | seconds | python-tuf / this |\n|---|---|---|\n'
printf '| tufkey sign (whole CLI process, file in, file out) | %.3f | 1.0 |\n' "$t"
printf '| python-tuf from_file + sign + to_file (in-process) | %.3f | %.1fx |\n' "$p" "$(echo "$p / $t" | bc -l)"
printf '| python-tuf, whole process incl. interpreter + imports | %.3f | %.1fx |\n' "$pp" "$(echo "$pp / $t" | bc -l)"
