# shellcheck shell=bash
# Helpers shared by the scripts in scripts/notary/ (sourced, not executed).

die() { echo "$(basename "$0"): $*" >&2; exit 1; }

# wait_port HOST PORT SECONDS [PID] — until a TCP connect succeeds; fails early if PID dies.
wait_port() {
  local host=$1 port=$2 secs=$3 pid=${4:-} i
  for ((i = 0; i < secs * 10; i++)); do
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then return 2; fi
    if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

# free_port — an unused loopback TCP port (racy by nature, good enough for tests).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# stop_pidfile FILE... — SIGTERM the pids in the FILEs (all at once), wait up to 5 s,
# SIGKILL what is left; removes the FILEs. (notary-server/-signer take ~2 s on SIGTERM.)
stop_pidfile() {
  local f pid i pids=()
  for f in "$@"; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill "$pid" 2>/dev/null && pids+=("$pid"); fi
    rm -f "$f"
  done
  for ((i = 0; i < 50 && ${#pids[@]} > 0; i++)); do
    local alive=()
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
    pids=("${alive[@]}")
    [ ${#pids[@]} -gt 0 ] && sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  return 0
}
