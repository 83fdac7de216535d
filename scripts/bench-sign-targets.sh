#!/usr/bin/env bash
# Signing one 100k-target targets.json: `tufkey sign` as a whole CLI process (file
# in, file out, through a running release tufkeyd) against python-tuf loading,
# signing and writing the same file (Metadata.from_file, sign with a CryptoSigner,
# to_file). Median of RUNS runs each, measured in this one run; prints a table and
# the ratio. Usage: scripts/bench-sign-targets.sh  (env: RUNS=5 TARGETS=100000,
# BUILD=0 to skip `cargo build --release --bins`, TUFKEY_BIN_DIR (default
# target/release), BASE_BIN_DIR=DIR to time an older build's tufkeyd + tufkey too,
# e.g. one from before a change, in the same run)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${RUNS:-5}
count=${TARGETS:-100000}

bin_dir=${TUFKEY_BIN_DIR:-target/release}
base_dir=${BASE_BIN_DIR:-}
[[ ${BUILD:-1} == 0 ]] || cargo build --release --bins -q
venv=target/tufkey-venv
bash tests/python/setup-venv.sh "$venv"
py="$venv/bin/python"

work=$(mktemp -d /tmp/tufkey-bench.XXXXXX)
# time_tufkey runs in a subshell: its daemon's pid goes through a file.
cleanup() { [[ -s $work/daemon.pid ]] && kill "$(cat "$work/daemon.pid")" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$py" tests/python/make_targets.py "$count" "$work/targets.json"
openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null |
    openssl pkcs8 -topk8 -nocrypt -out "$work/python-key.pem"

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# time_tufkey BIN_DIR — starts that build's tufkeyd, prints the median `tufkey sign`
# seconds, stops it.
time_tufkey() {
    local dir=$1 sock=$work/tufkeyd.sock times=() start keyid
    rm -rf "$work/store" "$sock"
    TUFKEY_PASSPHRASE=bench "$dir/tufkeyd" --no-keyring --no-yubikey --socket "$sock" \
        --store "$work/store" 2>"$work/tufkeyd.log" &
    local daemon_pid=$!
    echo "$daemon_pid" > "$work/daemon.pid"
    for _ in $(seq 600); do [[ -S $sock ]] && break; sleep 0.05; done
    [[ -S $sock ]] || { cat "$work/tufkeyd.log" >&2; exit 1; }
    local tufkey=("$dir/tufkey" --socket "$sock")
    keyid=$("${tufkey[@]}" key generate --gun bench.example/app --role targets)
    for _ in $(seq "$runs"); do
        start=$(now)
        "${tufkey[@]}" sign --key "$keyid" "$work/targets.json" --out "$work/signed-tufkey.json"
        times+=("$(echo "$(now) - $start" | bc -l)")
    done
    kill "$daemon_pid"; wait "$daemon_pid" 2>/dev/null || true; : > "$work/daemon.pid"
    printf '%s\n' "${times[@]}" | median
}

t=$(time_tufkey "$bin_dir")
[[ -z $base_dir ]] || base=$(time_tufkey "$base_dir")
python_times=()
python_process_times=()
for _ in $(seq "$runs"); do
    start=$(now)
    seconds=$("$py" tests/python/bench_sign.py "$work/targets.json" "$work/python-key.pem" "$work/signed-python.json" |
        "$py" -c 'import json,sys; d=json.load(sys.stdin); print(d["seconds"] - d["import_seconds"])')
    python_process_times+=("$(echo "$(now) - $start" | bc -l)")
    python_times+=("$seconds")
done

p=$(printf '%s\n' "${python_times[@]}" | median)
pp=$(printf '%s\n' "${python_process_times[@]}" | median)
size=$(stat -c %s "$work/targets.json")
printf '\n%s targets, %s bytes, median of %s runs\n\n' "$count" "$size" "$runs"
printf '| what | seconds | python-tuf / this |\n|---|---|---|\n'
printf '| tufkey sign (whole CLI process, file in, file out) | %.3f | 1.0 |\n' "$t"
[[ -z $base_dir ]] || printf '| tufkey sign, %s | %.3f | %.1fx |\n' "$base_dir" "$base" "$(echo "$base / $t" | bc -l)"
printf '| python-tuf from_file + sign + to_file (in-process) | %.3f | %.1fx |\n' "$p" "$(echo "$p / $t" | bc -l)"
printf '| python-tuf, whole process incl. interpreter + imports | %.3f | %.1fx |\n' "$pp" "$(echo "$pp / $t" | bc -l)"
