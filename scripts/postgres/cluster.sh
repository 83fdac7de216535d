#!/usr/bin/env bash
# cluster.sh start DIR PORT | stop DIR — a throwaway PostgreSQL cluster for the
# replica benchmark (scripts/bench-replicas.sh); the tests make the same cluster from
# Rust (tests/src/postgres.rs).
#
# start: Debian's initdb + pg_ctl (from /usr/lib/postgresql/<newest>/bin) make
#   DIR/cluster (data, log, Unix socket dir), listening on 127.0.0.1:PORT; the
#   superuser `postgres` logs in over the private socket only, everyone else over TCP
#   with a password (SCRAM). Creates the role and database `tufkey`, writes the role's
#   random password to DIR/tufkey-password (0600) and prints the URL for tufkeyd's
#   --postgres-url. PostgreSQL refuses to run as root: as root, its programs run as
#   the `postgres` user the Debian package creates (setpriv), who must be able to
#   reach DIR (its parent directories searchable, as /tmp/X made 0711 is).
# stop: fast shutdown of DIR's cluster (no-op if it is not running).
# Needs the Debian package postgresql (scripts/install-deps.sh).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../notary/lib.sh"
usage="usage: cluster.sh start DIR PORT | cluster.sh stop DIR"

BIN=$(compgen -G '/usr/lib/postgresql/*/bin' | sort -V | tail -n 1 || true)
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
  die "PostgreSQL is not installed: run scripts/install-deps.sh (Debian package postgresql)"
fi

# as_owner CMD... — run CMD as the cluster's owner (postgres when we are root).
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    setpriv --reuid="$(id -u postgres)" --regid="$(id -g postgres)" --clear-groups -- "$@"
  else
    "$@"
  fi
}

action=${1:?$usage}
DIR=${2:?$usage}
case $action in
start)
  PORT=${3:?$usage}
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  chmod 711 "$DIR"
  mkdir -p "$DIR/cluster/socket"
  if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$DIR/cluster"; fi
  chmod 700 "$DIR/cluster"
  cd "$DIR/cluster"
  as_owner "$BIN/initdb" --pgdata "$DIR/cluster/data" --username postgres --encoding UTF8 \
    --no-sync --auth-local trust --auth-host scram-sha-256 >"$DIR/cluster/initdb.log" 2>&1 \
    || { cat "$DIR/cluster/initdb.log" >&2; die "initdb failed"; }
  as_owner "$BIN/pg_ctl" start --pgdata "$DIR/cluster/data" --wait --timeout 30 \
    --log "$DIR/cluster/postgres.log" \
    -o "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories='$DIR/cluster/socket'" \
    >/dev/null || { tail -n 20 "$DIR/cluster/postgres.log" >&2; die "pg_ctl start failed"; }
  password=$(openssl rand -hex 24)
  (umask 077 && printf '%s' "$password" > "$DIR/tufkey-password")
  printf "CREATE ROLE tufkey LOGIN PASSWORD '%s';\nCREATE DATABASE tufkey OWNER tufkey;\n" "$password" |
    as_owner "$BIN/psql" --host "$DIR/cluster/socket" --port "$PORT" --username postgres \
      --dbname postgres --no-psqlrc --quiet --set ON_ERROR_STOP=1 >/dev/null
  echo "postgres://tufkey@127.0.0.1:$PORT/tufkey"
  ;;
stop)
  [ -f "$DIR/cluster/data/postmaster.pid" ] || exit 0
  cd "$DIR/cluster"
  as_owner "$BIN/pg_ctl" stop --pgdata "$DIR/cluster/data" --mode fast --wait --timeout 30 >/dev/null
  ;;
*) die "$usage" ;;
esac
