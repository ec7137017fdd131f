#!/usr/bin/env bash
# What metrics cost a read: GET by id (bench/lua/get.lua, wrk) against one `basalt serve` on
# SQLite with BASALT_METRICS=on (as shipped) and =off, the same binary, data and workload,
# rounds alternating, median of BENCH_ROUNDS each. Prints both and their ratio.
#
#   bash bench/metrics.sh                                 # builds .build/release/basalt if missing
#   BASALT_BIN=/path/to/basalt BENCH_ROUNDS=5 BENCH_DURATION=10s bash bench/metrics.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BASALT_BIN:-.build/release/basalt}
ROUNDS=${BENCH_ROUNDS:-5}
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
  BASALT_METRICS=$1 "$BIN" serve --http "127.0.0.1:$PORT" --data "$TMP/data" --schema bench/posts.yaml \
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

one() {
  local rps
  rps=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" -s bench/lua/get.lua "http://127.0.0.1:$PORT" -- /v1/posts/ "$TMP/ids.txt" |
    awk '/^Requests\/sec/{print $2}')
  log "$1: $rps req/s"
  echo "$rps"
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }

log "seeding posts"
start on
wrk -t2 -c"$CONNECTIONS" -d5s -s bench/lua/create.lua "http://127.0.0.1:$PORT" -- /v1/posts >/dev/null
stop
sqlite3 "$TMP/data/data.db" 'SELECT id FROM posts LIMIT 10000' >"$TMP/ids.txt"
log "$(wc -l <"$TMP/ids.txt") ids"

on_runs=()
off_runs=()
for r in $(seq 1 "$ROUNDS"); do
  for mode in on off; do
    start "$mode"
    wrk -t2 -c"$CONNECTIONS" -d2s -s bench/lua/get.lua "http://127.0.0.1:$PORT" -- /v1/posts/ "$TMP/ids.txt" >/dev/null
    rps=$(one "round $r metrics $mode")
    if [[ $mode == on ]]; then on_runs+=("$rps"); else off_runs+=("$rps"); fi
    stop
  done
done
with=$(median "${on_runs[@]}")
without=$(median "${off_runs[@]}")

echo "| get by id (SQLite, $CONNECTIONS connections, median of $ROUNDS × $DURATION) | req/s |"
echo "| --- | ---: |"
echo "| metrics on (as shipped) | $with |"
echo "| metrics off (BASALT_METRICS=off) | $without |"
awk -v a="$with" -v b="$without" 'BEGIN { printf "| on / off | %.3f (%.1f%% slower) |\n", a / b, (1 - a / b) * 100 }'
