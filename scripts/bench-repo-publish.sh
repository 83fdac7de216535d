#!/usr/bin/env bash
# A release on a big repository: `tufkey repo publish` of a release adding NEW
# targets (10,000) to a repository of BASE targets (100,000), against python-tuf's
# Metadata API doing the same release (tests/python/bench_repo_publish.py: load,
# hash and copy the new files, sign and write targets, snapshot, timestamp). One
# run each, measured in this one run; the setup (the BASE-target first release) is
# not timed; tufkey's release is `repo add` of the new files plus `repo publish`. tufkey signs through a release tufkeyd (software keys); python-tuf with
# a local key. Prints a table and the ratio.
# Usage: scripts/bench-repo-publish.sh  (env: BASE=100000 NEW=10000)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
base=${BASE:-100000}
new=${NEW:-10000}

cargo build --release --bins -q
venv=target/tufkey-venv
bash tests/python/setup-venv.sh "$venv"
py="$venv/bin/python"

# In memory (TMPDIR=/dev/shm by default) so both tools pay the same for creating
# files: on a disk that has just deleted many files, ext4's inode allocation cost
# depends on which block group a directory lands in, and swamps the difference.
work=$(mktemp -d "${TMPDIR:-/dev/shm}/tufkey-bench-repo.XXXXXX")
daemon_pid=
cleanup() { [[ -n $daemon_pid ]] && kill "$daemon_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# The same files for both tools: BASE in one release, NEW in the next.
"$py" - "$work" "$base" "$new" <<'EOF'
import os, random, sys
work, base, new = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(7)
for kind, count in (("base", base), ("new", new)):
    for i in range(count):
        d = os.path.join(work, kind, "pkg", f"{i // 1000:03d}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"{kind}-{i:06d}.tar.gz"), "wb") as f:
            f.write(rng.randbytes(rng.randint(64, 2048)))
EOF
openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null |
    openssl pkcs8 -topk8 -nocrypt -out "$work/python-key.pem"

TUFKEY_PASSPHRASE=bench target/release/tufkeyd --no-keyring --no-yubikey \
    --socket "$work/tufkeyd.sock" --store "$work/store" 2>"$work/tufkeyd.log" &
daemon_pid=$!
for _ in $(seq 600); do [[ -S $work/tufkeyd.sock ]] && break; sleep 0.05; done
[[ -S $work/tufkeyd.sock ]] || { cat "$work/tufkeyd.log" >&2; exit 1; }
tufkey=(target/release/tufkey --socket "$work/tufkeyd.sock")

now() { date +%s.%N; }
# Stages every file under $2 into the tufkey repository $1, in batches (argv limits).
stage() { (cd "$2" && find . -type f -printf '%P\0' | xargs -0 -n 5000 "$OLDPWD/${tufkey[0]}" \
    "${tufkey[@]:1}" repo add "$1" >/dev/null); }

# tufkey: the first release (not timed), then the measured one.
"${tufkey[@]}" repo init "$work/tufkey-repo" --gun bench.example/app >/dev/null 2>&1
stage "$work/tufkey-repo" "$work/base"
"${tufkey[@]}" repo publish "$work/tufkey-repo" 2>/dev/null
start=$(now)
stage "$work/tufkey-repo" "$work/new"
staged=$(now)
"${tufkey[@]}" repo publish "$work/tufkey-repo" 2>/dev/null
tufkey_add=$(echo "$staged - $start" | bc -l)
tufkey_publish=$(echo "$(now) - $staged" | bc -l)
tufkey_release=$(echo "$(now) - $start" | bc -l)
"${tufkey[@]}" repo status "$work/tufkey-repo" >&2

# python-tuf: the same two releases.
"$py" tests/python/bench_repo_publish.py init "$work/python-repo" "$work/python-key.pem" "$work/base" >/dev/null
start=$(now)
python_json=$("$py" tests/python/bench_repo_publish.py publish "$work/python-repo" "$work/python-key.pem" "$work/new")
python_process=$(echo "$(now) - $start" | bc -l)
python_inproc=$(echo "$python_json" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')

printf '\nrelease adding %s targets to a repository of %s, one run each\n\n' "$new" "$base"
printf '| what | seconds | this / tufkey |\n|---|---|---|\n'
printf '| tufkey repo add (%s files, batches of 5000) + repo publish | %.3f | 1.0 |\n' "$new" "$tufkey_release"
printf '| of which repo add | %.3f | |\n| of which repo publish | %.3f | |\n' "$tufkey_add" "$tufkey_publish"
printf '| python-tuf release (in-process: load, add, sign, write) | %.3f | %.2fx |\n' \
    "$python_inproc" "$(echo "$python_inproc / $tufkey_release" | bc -l)"
printf '| python-tuf release, whole process incl. interpreter + imports | %.3f | %.2fx |\n' \
    "$python_process" "$(echo "$python_process / $tufkey_release" | bc -l)"
