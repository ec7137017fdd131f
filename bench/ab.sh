# Shared by the A/B scripts (outbox.sh, metrics.sh, tracing.sh), sourced after `cd` to the repository: one
# release `basalt serve` on SQLite in a temporary folder, started and stopped per round, wrk
# runs of one workload, medians. Settings: BASALT_BIN, BENCH_ROUNDS, BENCH_DURATION,
# BENCH_CONNECTIONS. Defines BIN ROUNDS DURATION CONNECTIONS TMP PORT and log, start [ENV=V…],
# stop, one LABEL LUA ARGS…, median, ratio ON OFF.
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

# start [NAME=VALUE…] — serves bench/posts.yaml from $TMP/data with the given environment.
start() {
  env "$@" "$BIN" serve --http "127.0.0.1:$PORT" --data "$TMP/data" --schema bench/posts.yaml \
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

# warm LUA ARGS… — an unmeasured 2 s run.
warm() { wrk -t2 -c"$CONNECTIONS" -d2s -s "bench/lua/$1.lua" "http://127.0.0.1:$PORT" -- "${@:2}" >/dev/null; }

# one LABEL LUA ARGS… — the requests/s of one measured run.
one() {
  local rps
  rps=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" -s "bench/lua/$2.lua" "http://127.0.0.1:$PORT" -- "${@:3}" |
    awk '/^Requests\/sec/{print $2}')
  log "$1: $rps req/s"
  echo "$rps"
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "| on / off | %.3f (%.1f%% slower) |\n", a / b, (1 - a / b) * 100 }'; }

# seed_ids — creates posts for 5 s and writes up to 10,000 of their ids to $TMP/ids.txt.
seed_ids() {
  log "seeding posts"
  start
  wrk -t2 -c"$CONNECTIONS" -d5s -s bench/lua/create.lua "http://127.0.0.1:$PORT" -- /v1/posts >/dev/null
  stop
  sqlite3 "$TMP/data/data.db" 'SELECT id FROM posts LIMIT 10000' >"$TMP/ids.txt"
  log "$(wc -l <"$TMP/ids.txt") ids"
}

# get_ab LABEL "ON_ENV…" "OFF_ENV…" — GET by id, rounds alternating between the two
# environments (words NAME=VALUE), median of each; prints the table and the ratio.
get_ab() {
  local on_runs=() off_runs=() r mode rps
  for r in $(seq 1 "$ROUNDS"); do
    for mode in on off; do
      # shellcheck disable=SC2086
      if [[ $mode == on ]]; then start $2; else start $3; fi
      warm get /v1/posts/ "$TMP/ids.txt"
      rps=$(one "round $r $1 $mode" get /v1/posts/ "$TMP/ids.txt")
      if [[ $mode == on ]]; then on_runs+=("$rps"); else off_runs+=("$rps"); fi
      stop
    done
  done
  echo "| get by id (SQLite, $CONNECTIONS connections, median of $ROUNDS × $DURATION) | req/s |"
  echo "| --- | ---: |"
  echo "| $1 on | $(median "${on_runs[@]}") |"
  echo "| $1 off | $(median "${off_runs[@]}") |"
  ratio "$(median "${on_runs[@]}")" "$(median "${off_runs[@]}")"
}

