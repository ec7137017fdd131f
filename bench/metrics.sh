#!/usr/bin/env bash
# What metrics cost a read: GET by id (bench/lua/get.lua, wrk) against one `basalt serve` on
# SQLite with BASALT_METRICS=on (as shipped) and =off, the same binary, data and workload,
# rounds alternating, median of BENCH_ROUNDS each. Prints both and their ratio.
#
#   bash bench/metrics.sh                                 # builds .build/release/basalt if missing
#   BASALT_BIN=/path/to/basalt BENCH_ROUNDS=5 BENCH_DURATION=10s bash bench/metrics.sh
set -euo pipefail
cd "$(dirname "$0")/.."

source bench/ab.sh

log "seeding posts"
start
wrk -t2 -c"$CONNECTIONS" -d5s -s bench/lua/create.lua "http://127.0.0.1:$PORT" -- /v1/posts >/dev/null
stop
sqlite3 "$TMP/data/data.db" 'SELECT id FROM posts LIMIT 10000' >"$TMP/ids.txt"
log "$(wc -l <"$TMP/ids.txt") ids"

on_runs=()
off_runs=()
for r in $(seq 1 "$ROUNDS"); do
  for mode in on off; do
    start BASALT_METRICS="$mode"
    warm get /v1/posts/ "$TMP/ids.txt"
    rps=$(one "round $r metrics $mode" get /v1/posts/ "$TMP/ids.txt")
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
ratio "$with" "$without"
