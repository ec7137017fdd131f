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

source bench/ab.sh
events() { sqlite3 "$TMP/data/data.db" 'PRAGMA busy_timeout = 5000; SELECT count(*) FROM _basalt_events' | tail -1; }

# Rounds alternate on and off so that drift (the table growing, the machine's noise) falls on
# both alike. The server creates the outbox triggers at startup, so each round starts it (on),
# then drops the triggers from outside while it runs (off: SQLite re-prepares its statements).
on_runs=()
off_runs=()
for r in $(seq 1 "$ROUNDS"); do
  start
  warm create /v1/posts
  on_runs+=("$(one "round $r outbox on" create /v1/posts)")
  triggers=$(sqlite3 "$TMP/data/data.db" "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'posts'")
  [[ -n $triggers ]] || { echo "bench: no outbox triggers on posts" >&2; exit 1; }
  for t in $triggers; do sqlite3 "$TMP/data/data.db" "PRAGMA busy_timeout = 5000; DROP TRIGGER \"$t\"" >/dev/null; done
  before=$(events)
  off_runs+=("$(one "round $r outbox off" create /v1/posts)")
  [[ $(events) == "$before" ]] || { echo "bench: events were still written with the triggers dropped" >&2; exit 1; }
  stop
done
with=$(median "${on_runs[@]}")
without=$(median "${off_runs[@]}")

echo "| create (SQLite, $CONNECTIONS connections, median of $ROUNDS × $DURATION) | req/s |"
echo "| --- | ---: |"
echo "| outbox on (as shipped) | $with |"
echo "| outbox off (triggers dropped) | $without |"
ratio "$with" "$without"
