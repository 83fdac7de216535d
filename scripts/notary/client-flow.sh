#!/usr/bin/env bash
# client-flow.sh DIR SERVER_PORT GUN — drive the real `notary` CLI (0.7.0) against
# notary-server at https://127.0.0.1:SERVER_PORT, unattended, and check every step.
#
# DIR is the make-certs.sh directory (DIR/ca.crt verifies notary-server). Work files go
# to DIR/client-flow/ (wiped first): trust/ (the client's trust dir), targets, the
# delegation key/cert, fresh/ (a second client with only the root pinned), logs/.
# GUN must be new to the server (notary-server's memory store keeps old collections).
# Steps, in order (any failure: message "client-flow: step N <name> FAILED", the
# command's output, exit 1):
#   init GUN; add 2 targets; publish; list (both shown);
#   key rotate GUN snapshot -r (snapshot key becomes server-managed => notary-server
#   asks the signer to CreateKey(role=snapshot)); publish; list;
#   delegation add GUN targets/releases <fresh openssl P-256 cert> --all-paths;
#   key import <its PKCS#8 private key> --role targets/releases;
#   add a target --roles targets/releases; publish; list (3 targets, the third with role
#   targets/releases); list --roles targets/releases;
#   a fresh client (empty trust dir) pinned to the root certificate's key ID via
#   trust_pinning.certs + disable_tofu can list all 3; a client pinned to a wrong ID
#   must fail;
#   the server-managed keys (timestamp, snapshot) in the server's root.json must not be
#   in the client's key store.
# Prints, for the caller to check the keys live only in the signing service:
#   SIGNER_KEY timestamp <notary key id>
#   SIGNER_KEY snapshot <notary key id>
#   ROOT_KEY <root key id as in root.json (x509 form)>
# Env: NOTARY_BIN (default notary); NOTARY_*_PASSPHRASE default to test values.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
usage="usage: client-flow.sh DIR SERVER_PORT GUN"
DIR=$(cd "${1:?$usage}" && pwd)
PORT=${2:?$usage}
GUN=${3:?$usage}
BIN=${NOTARY_BIN:-notary}
CA=$DIR/ca.crt
[ -f "$CA" ] || die "missing $CA"
W=$DIR/client-flow
rm -rf "$W"; mkdir -p "$W/logs"
cd "$W"
TRUST=$W/trust
URL=https://127.0.0.1:$PORT
export NOTARY_ROOT_PASSPHRASE=${NOTARY_ROOT_PASSPHRASE:-root-pass-123}
export NOTARY_TARGETS_PASSPHRASE=${NOTARY_TARGETS_PASSPHRASE:-targets-pass-123}
export NOTARY_SNAPSHOT_PASSPHRASE=${NOTARY_SNAPSHOT_PASSPHRASE:-snapshot-pass-123}
export NOTARY_DELEGATION_PASSPHRASE=${NOTARY_DELEGATION_PASSPHRASE:-delegation-pass-123}

N=0
OUT=""
# step NAME CMD... — run CMD, keep its output in $OUT and logs/NN-name.log, die loudly.
step() {
  local name=$1; shift
  N=$((N + 1))
  local log; log=$(printf '%s/logs/%02d-%s.log' "$W" "$N" "${name//[^A-Za-z0-9.]/-}")
  local t0; t0=$(date +%s%N)
  if OUT=$("$@" </dev/null 2>&1); then
    printf '%s\n' "$OUT" > "$log"
    printf 'client-flow: step %d %-38s ok (%d ms)\n' "$N" "$name" $((($(date +%s%N) - t0) / 1000000))
  else
    local rc=$?
    printf '%s\n' "$OUT" > "$log"
    echo "client-flow: step $N $name FAILED (exit $rc): $*" >&2
    echo "$OUT" | sed 's/^/    | /' >&2
    exit 1
  fi
}
# check NAME CONDITION-CMD... — an assertion step on $OUT or on files.
check() {
  local name=$1; shift
  N=$((N + 1))
  if "$@"; then
    printf 'client-flow: step %d %-38s ok\n' "$N" "$name"
  else
    echo "client-flow: step $N $name FAILED" >&2
    [ -n "$OUT" ] && echo "$OUT" | sed 's/^/    | /' >&2
    exit 1
  fi
}
notary_() { "$BIN" -s "$URL" --tlscacert "$CA" -d "$TRUST" "$@"; }

# has_target NAME ROLE — $OUT (a `notary list` table) has a row NAME ... ROLE
has_target() { printf '%s\n' "$OUT" | awk -v n="$1" -v r="$2" '$1 == n && $NF == r { f = 1 } END { exit !f }'; }
# n_targets — number of data rows in $OUT
n_targets() { printf '%s\n' "$OUT" | awk 'NR > 2 && NF >= 4' | wc -l; }
list_is() {  # list_is COUNT NAME:ROLE...
  local want=$1; shift
  [ "$(n_targets)" -eq "$want" ] || { echo "expected $want targets, got $(n_targets)" >&2; return 1; }
  local nr; for nr in "$@"; do has_target "${nr%%:*}" "${nr#*:}" || { echo "missing target $nr" >&2; return 1; }; done
}

printf 'alpha\n' > alpha.txt
printf 'beta beta\n' > beta.txt
printf 'release one\n' > release.txt

fresh_gun() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" "$URL/v2/$GUN/_trust/tuf/root.json")
  [ "$code" = 404 ] || { echo "GET root.json for $GUN answered $code, want 404: use a GUN new to this server" >&2; return 1; }
}
check "GUN is new to notary-server" fresh_gun
step "init" notary_ init "$GUN"
step "add alpha" notary_ add "$GUN" alpha alpha.txt
step "add beta" notary_ add "$GUN" beta beta.txt
step "publish 1" notary_ publish "$GUN"
step "list 1" notary_ list "$GUN"
check "list 1 shows alpha, beta" list_is 2 alpha:targets beta:targets

step "key rotate snapshot -r" notary_ key rotate "$GUN" snapshot -r
step "publish 2" notary_ publish "$GUN"
step "list 2" notary_ list "$GUN"
check "list 2 shows alpha, beta" list_is 2 alpha:targets beta:targets

# Delegation key + certificate made outside notary (openssl), imported into the trust dir.
step "openssl delegation key" openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out releases.key
step "openssl delegation cert" openssl req -new -x509 -sha256 -days 365 -key releases.key \
  -out releases.crt -subj "/CN=targets\/releases"
step "delegation add targets/releases" notary_ delegation add "$GUN" targets/releases releases.crt --all-paths
step "key import delegation key" notary_ key import releases.key --role targets/releases
step "add release (targets/releases)" notary_ add "$GUN" release release.txt --roles targets/releases
step "publish 3" notary_ publish "$GUN"
step "list 3" notary_ list "$GUN"
check "list 3 shows alpha, beta, release" list_is 3 alpha:targets beta:targets release:targets/releases
step "list 3 --roles targets/releases" notary_ list "$GUN" --roles targets/releases
check "list 3 delegation shows release" list_is 1 release:targets/releases
step "delegation list" notary_ delegation list "$GUN"
check "delegation list shows targets/releases" grep -q '^targets/releases ' <<<"$OUT"

# The server's view of root.json: which keys are server-managed (live in the signer).
step "GET root.json from notary-server" curl -fsS --cacert "$CA" "$URL/v2/$GUN/_trust/tuf/root.json" -o server-root.json
read -r ROOT_ID TS_ID SN_ID < <(python3 - server-root.json <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["signed"]
ids = [s["roles"][r]["keyids"] for r in ("root", "timestamp", "snapshot")]
assert all(len(i) == 1 for i in ids), ids
print(*(i[0] for i in ids))
PY
)
step "GET timestamp.key from notary-server" curl -fsS --cacert "$CA" "$URL/v2/$GUN/_trust/tuf/timestamp.key" -o server-timestamp.key
step "GET snapshot.key from notary-server" curl -fsS --cacert "$CA" "$URL/v2/$GUN/_trust/tuf/snapshot.key" -o server-snapshot.key
step "key list" notary_ key list
LOCAL_KEYS=$OUT
not_local() {
  local id
  for id in "$TS_ID" "$SN_ID"; do
    [ ! -e "$TRUST/private/$id.key" ] || { echo "$id has a local key file" >&2; return 1; }
    ! grep -q "$id" <<<"$LOCAL_KEYS" || { echo "$id is in notary key list" >&2; return 1; }
  done
}
check "timestamp+snapshot keys not local" not_local
# The .key endpoints return the current server-managed public key: IDs must match root.json.
same_ids() {
  python3 - "$TS_ID" "$SN_ID" <<'PY'
import base64, hashlib, json, sys
def kid(path):
    k = json.load(open(path))
    c = json.dumps({"keytype": k["keytype"], "keyval": {"private": None, "public": k["keyval"]["public"]}},
                   separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(c.encode()).hexdigest()
got = (kid("server-timestamp.key"), kid("server-snapshot.key"))
if got != tuple(sys.argv[1:3]):
    sys.exit(f"server .key IDs {got} != root.json IDs {tuple(sys.argv[1:3])}")
PY
}
check "server .key endpoints match root.json" same_ids

# A fresh client: empty trust dir, the root certificate's key ID pinned, TOFU disabled.
mkdir -p fresh bad
printf '{"trust_pinning":{"disable_tofu":true,"certs":{"%s":["%s"]}}}\n' "$GUN" "$ROOT_ID" > fresh/config.json
printf '{"trust_pinning":{"disable_tofu":true,"certs":{"%s":["%s"]}}}\n' "$GUN" \
  "$(printf '%064d' 0)" > bad/config.json
step "fresh pinned client list" "$BIN" -c fresh/config.json -s "$URL" --tlscacert "$CA" -d "$W/fresh/trust" list "$GUN"
check "fresh client sees alpha, beta, release" list_is 3 alpha:targets beta:targets release:targets/releases
N=$((N + 1))
if OUT=$("$BIN" -c bad/config.json -s "$URL" --tlscacert "$CA" -d "$W/bad/trust" list "$GUN" </dev/null 2>&1); then
  echo "client-flow: step $N wrongly pinned client FAILED: it listed the collection" >&2; exit 1
fi
printf 'client-flow: step %d %-38s ok (refused: %s)\n' "$N" "wrongly pinned client is refused" "$(tr '\n' ' ' <<<"$OUT" | sed 's/^ *//' | cut -c1-80)"

echo "ROOT_KEY $ROOT_ID"
echo "SIGNER_KEY timestamp $TS_ID"
echo "SIGNER_KEY snapshot $SN_ID"
echo "client-flow: all $N steps passed for $GUN"
