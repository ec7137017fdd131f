#!/usr/bin/env bash
# What the transactional outbox costs a write: POST create (bench/lua/create.lua, wrk) against
# one `basalt serve` on SQLite, as shipped and with the outbox's triggers dropped from the
# collection's table (sqlite3, while the server runs) — the same binary, data folder and
# workload, rounds alternating, median of BENCH_ROUNDS each. Prints both and their ratio.
#
#   bash bench/outbox.sh                                  # builds .build/release/basalt if missing
#   BASALT_BIN=/path/to/basalt BENCH_ROUNDS=5 BENCH_DURATION=20s bash bench/outbox.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BASALT_BIN:-.build/release/basalt}
ROUNDS=${BENCH_ROUNDS:-3}
DURATION=${BENCH_DURATION:-10s}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
log() { printf '==> %s\n' "$*" >&2; }

need() { command -v "$1" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }
need wrk wrk
need sqlite3 sqlite3
[[ -x $BIN ]] || { log "building basalt (release)"; swift build -c release --product basalt >&2; }

TMP=$(mktemp -d)
SERVER=
cleanup() {
  [[ -n $SERVER ]] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

start() {
  "$BIN" serve --http "127.0.0.1:$PORT" --data "$TMP/data" --schema bench/posts.yaml \
    --rate-limit-anonymous 0 --rate-limit-subject 0 >"$TMP/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$PORT/health/ready" >/dev/null && return
    sleep 0.1
  done
  cat "$TMP/server.log" >&2
  exit 1
}
stop() { kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=; }

# one LABEL — the requests/s of one measured run.
one() {
  local rps
  rps=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" -s bench/lua/create.lua "http://127.0.0.1:$PORT" -- /v1/posts |
    awk '/^Requests\/sec/{print $2}')
  log "$1: $rps req/s"
  echo "$rps"
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
events() { sqlite3 "$TMP/data/data.db" 'PRAGMA busy_timeout = 5000; SELECT count(*) FROM _basalt_events' | tail -1; }

# Rounds alternate on and off so that drift (the table growing, the machine's noise) falls on
# both alike. The server creates the outbox triggers at startup, so each round starts it (on),
# then drops the triggers from outside while it runs (off: SQLite re-prepares its statements).
on_runs=()
off_runs=()
for r in $(seq 1 "$ROUNDS"); do
  start
  wrk -t2 -c"$CONNECTIONS" -d2s -s bench/lua/create.lua "http://127.0.0.1:$PORT" -- /v1/posts >/dev/null
  on_runs+=("$(one "round $r outbox on")")
  triggers=$(sqlite3 "$TMP/data/data.db" "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'posts'")
  [[ -n $triggers ]] || { echo "bench: no outbox triggers on posts" >&2; exit 1; }
  for t in $triggers; do sqlite3 "$TMP/data/data.db" "PRAGMA busy_timeout = 5000; DROP TRIGGER \"$t\"" >/dev/null; done
  before=$(events)
  off_runs+=("$(one "round $r outbox off")")
  [[ $(events) == "$before" ]] || { echo "bench: events were still written with the triggers dropped" >&2; exit 1; }
  stop
done
with=$(median "${on_runs[@]}")
without=$(median "${off_runs[@]}")

echo "| create (SQLite, $CONNECTIONS connections, median of $ROUNDS × $DURATION) | req/s |"
echo "| --- | ---: |"
echo "| outbox on (as shipped) | $with |"
echo "| outbox off (triggers dropped) | $without |"
awk -v a="$with" -v b="$without" 'BEGIN { printf "| on / off | %.3f (%.1f%% slower) |\n", a / b, (1 - a / b) * 100 }'
