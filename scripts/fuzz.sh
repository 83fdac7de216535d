#!/usr/bin/env bash
# Long fuzzing run (issue 10): the canonical JSON differential test against
# olpc-cjson and securesystemslib, and mutation fuzzing of the key-file/store.json,
# Notary PEM/PKCS#8 and age bundle/manifest parsers. cargo-fuzz and AFL++ need a
# nightly toolchain, so these are proptest harnesses run at scale: the same tests
# `.ci/run` runs with small, fixed seeds, here with many cases and a fresh
# time-based seed per round (printed, so a failure can be replayed).
#
# usage: scripts/fuzz.sh [HOURS]     (default 0.1, i.e. six minutes)
# Replay a failure: TUFKEY_CJSON_SEED=<seed> (or TUFKEY_FUZZ_SEED=<seed>) with the
# printed case count, running the cargo test command it names.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR=never

hours="${1:-0.1}"
cjson_cases="${TUFKEY_CJSON_CASES_PER_ROUND:-200000}"
parser_cases="${TUFKEY_FUZZ_CASES_PER_ROUND:-20000}"

bash tests/python/setup-venv.sh target/tufkey-venv
# Build once and copy the test binaries aside: the run then neither waits for nor
# breaks on edits made to the tree meanwhile.
bin_dir=$(mktemp -d /tmp/tufkey-fuzz-bin.XXXXXX)
trap 'rm -rf "$bin_dir"' EXIT
build() { # NAME CARGO_TEST_ARGS...
    local name=$1 path
    shift
    path=$(nice -n 10 cargo test --offline "$@" --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -1)
    [ -n "$path" ] || { echo "building $* failed" >&2; exit 1; }
    cp "$path" "$bin_dir/$name"
}
build canonical_differential -p tufkey-e2e --test canonical_differential
build parser_fuzz -p tufkey-e2e --test parser_fuzz
build tufkeyd_lib -p tufkeyd --lib
cjson=(nice -n 10 "$bin_dir/canonical_differential" tufkey_canonical --nocapture)
parsers=(nice -n 10 "$bin_dir/parser_fuzz" --nocapture)
key_files=(nice -n 10 "$bin_dir/tufkeyd_lib" backend::software::key_file::fuzz --nocapture)
deadline=$(( $(date +%s) + $(awk -v h="$hours" 'BEGIN { printf "%d", h * 3600 }') ))

started=$(date +%s)
rounds=0 cjson_total=0 parser_total=0
run() { # NAME SEED_VARIABLE CASES_VARIABLE CASES COMMAND...
    local name=$1 seed_var=$2 cases_var=$3 cases=$4 seed log
    shift 4
    seed=$(( $(date +%s%N) & 0x7fffffffffffffff ))
    log=$(mktemp /tmp/tufkey-fuzz.XXXXXX)
    if ! env "$seed_var=$seed" "$cases_var=$cases" "$@" >"$log" 2>&1; then
        cat "$log" >&2
        echo "FUZZ FAILURE in $name: replay with $seed_var=$seed $cases_var=$cases $*" >&2
        exit 1
    fi
    grep -h "canonical differential: [0-9]* cases in" "$log" || true
    rm -f "$log"
}

while [ "$(date +%s)" -lt "$deadline" ]; do
    rounds=$((rounds + 1))
    echo "== round $rounds ($(( $(date +%s) - started )) s elapsed)"
    run "canonical JSON differential" TUFKEY_CJSON_SEED TUFKEY_CJSON_CASES "$cjson_cases" "${cjson[@]}"
    cjson_total=$((cjson_total + cjson_cases))
    run "notary PEM and bundle parsers" TUFKEY_FUZZ_SEED TUFKEY_FUZZ_CASES "$parser_cases" "${parsers[@]}"
    run "key-file and store.json parsers" TUFKEY_FUZZ_SEED TUFKEY_FUZZ_CASES "$parser_cases" "${key_files[@]}"
    parser_total=$((parser_total + parser_cases))
done

elapsed=$(( $(date +%s) - started ))
# Per round: 6 PEM fixtures, bundle, manifest (parser_fuzz) + key file, store.json.
echo "fuzz: ${elapsed} s, ${rounds} rounds, ${cjson_total} canonical JSON documents," \
     "$((parser_total * 10)) mutated parser inputs, no failures"
