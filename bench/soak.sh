#!/usr/bin/env bash
# The soak: a sustained mixed load against a release build of Basalt, on SQLite and then on
# PostgreSQL, reporting per minute req/s, p99, the server's RSS and (SQLite) the size of the
# write-ahead log. Not part of the test command: it takes about 25 minutes.
#
#   bash bench/soak.sh                                 # 10 minutes a backend
#   SOAK_MINUTES=3 SOAK_BACKENDS=sqlite bash bench/soak.sh
#   BASALT_BIN=/path/to/basalt bash bench/soak.sh      # a binary built elsewhere
#   SOAK_SLOW_DISK=50 bash bench/soak.sh               # the server's writes capped at 50 IOPS
#                                                      # (cgroup v1 blkio throttle; needs root)
#   SOAK_BACKUPS=20 bash bench/soak.sh                 # `basalt backup create` every 20 s
#                                                      # throughout the load
#
# Load: wrk -t2 -c64, 60% GET by id, 20% the filtered list, 10% PATCH, 10% POST, after seeding
# 10,000 posts (bench/posts.yaml). Each minute is one wrk run of 60 s; the samples are taken
# between runs. Results: bench/out/soak-DATE/{results.jsonl,table.md}.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

MINUTES=${SOAK_MINUTES:-10}
BACKENDS=${SOAK_BACKENDS:-sqlite postgres}
RECORDS=${SOAK_RECORDS:-10000}
CONNECTIONS=${SOAK_CONNECTIONS:-64}
FILTER="status = 'published' && views > 500"

log() { printf '==> %s\n' "$*"; }
die() { printf 'soak: %s\n' "$*" >&2; exit 1; }

WORK=$(mktemp -d)
SERVER_PID=""
PGDATA=""
PG_BIN=""
cleanup() {
  if [[ -n $SERVER_PID ]]; then kill -TERM "$SERVER_PID" 2>/dev/null || true; sleep 2; kill -KILL "$SERVER_PID" 2>/dev/null || true; fi
  if [[ -n $PGDATA && -f $PGDATA/postmaster.pid ]]; then runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
  [[ -n $PGDATA ]] && rm -rf "$PGDATA"
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v wrk >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
urlencode() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }

if [[ -n ${BASALT_BIN:-} ]]; then
  BIN=$BASALT_BIN
else
  log "building Basalt (release)"
  swift build -c release --product basalt
  BIN=$(swift build -c release --show-bin-path)/basalt
fi

OUT=$ROOT/bench/out/soak-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (dirty)')"
  echo "host: $(uname -srm), $(nproc) cores"
  echo "settings: minutes=$MINUTES records=$RECORDS connections=$CONNECTIONS backends=[$BACKENDS]"
} | tee "$OUT/env.txt"

# slow_disk PID IOPS — a slow disk for one process: its writes to the data folder's device
# throttled (cgroup v1 blkio; fsync-driven writes are what a slow disk makes slow).
slow_disk() {
  local cg=/sys/fs/cgroup/blkio/basalt-soak dev
  dev=$(stat -c '%d' "$WORK" | awk '{printf "%d:%d", int($1/256), $1%256}')
  mkdir -p "$cg" || die "no blkio cgroup (SOAK_SLOW_DISK needs cgroup v1 and root)"
  echo "$dev $2" >"$cg/blkio.throttle.write_iops_device"
  # cgroup.procs moves every thread of the process (tasks would move only the one named).
  echo "$1" >"$cg/cgroup.procs"
  log "slow disk: writes of pid $1 to $dev capped at $2 IOPS"
}

rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
file_bytes() { stat -c %s "$1" 2>/dev/null || echo 0; }

soak() {  # BACKEND DATA_ARGS...
  local backend=$1; shift
  local port base key list
  key=$("$BIN" admin key create --name soak "$@")
  port=$(free_port)
  base=http://127.0.0.1:$port
  "$BIN" serve --http "127.0.0.1:$port" "$@" --schema bench/posts.yaml \
    --rate-limit-anonymous 0 --rate-limit-subject 0 >"$OUT/$backend-server.log" 2>&1 &
  SERVER_PID=$!
  if [[ -n ${SOAK_SLOW_DISK:-} ]]; then slow_disk "$SERVER_PID" "$SOAK_SLOW_DISK"; fi
  for _ in $(seq 600); do curl -fsS -o /dev/null "$base/health/ready" 2>/dev/null && break; sleep 0.1; done
  log "$backend: seeding $RECORDS posts"
  python3 bench/seed.py --target basalt --url "$base" --token "$key" --count "$RECORDS" --ids-out "$WORK/$backend-ids.txt" >/dev/null
  list="/v1/posts?filter=$(urlencode "$FILTER")&sort=-views&limit=20"
  local backups=""
  if [[ -n ${SOAK_BACKUPS:-} ]]; then
    # Online backups back to back with the load: each one's duration, one line per backup.
    (while sleep "$SOAK_BACKUPS"; do
      started=$(date +%s%N)
      "$BIN" backup create "$WORK/soak.backup.gz" "$@" >/dev/null 2>&1 || { echo failed >>"$WORK/$backend-backups.txt"; continue; }
      echo $(( ($(date +%s%N) - started) / 1000000 )) >>"$WORK/$backend-backups.txt"
    done) &
    backups=$!
  fi
  for minute in $(seq "$MINUTES"); do
    wrk -t2 -c"$CONNECTIONS" -d60s --timeout 10s --latency -s bench/lua/mixed.lua "$base" -- "$WORK/$backend-ids.txt" "$list" \
      >"$WORK/wrk.txt" 2>&1 || die "wrk failed: $(tail -5 "$WORK/wrk.txt")"
    local result wal=0
    result=$(sed -n 's/^BENCH_RESULT //p' "$WORK/wrk.txt")
    [[ -n $result ]] || die "no result from wrk"
    if [[ $backend == sqlite ]]; then wal=$(file_bytes "$WORK/sqlite-data/data.db-wal"); fi
    # The table grows by the POSTs (10% of the load): its size explains what slows with it.
    local records
    records=$(curl -fsS "$base/v1/posts?total=true&limit=1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["total"])')
    local line
    line=$(printf '{"backend":"%s","minute":%d,"rss_kb":%s,"wal_bytes":%s,"records":%s,%s' "$backend" "$minute" "$(rss_kb "$SERVER_PID")" "$wal" "$records" "${result#\{}")
    echo "$line" >>"$OUT/results.jsonl"
    python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("  %-8s min %2d  %8.0f req/s  p99 %7.1f ms  rss %5.0f MiB  wal %7.1f MiB  records %7d  non2xx %d  errors %d" % (r["backend"], r["minute"], r["rps"], r["p99_us"]/1000, r["rss_kb"]/1024, r["wal_bytes"]/1048576, r["records"], r["non2xx"], r["socket_errors"]))' "$line"
  done
  if [[ $backend == sqlite ]]; then echo "  sqlite: data.db $(file_bytes "$WORK/sqlite-data/data.db") bytes at the end"; fi
  if [[ -n $backups ]]; then
    kill "$backups" 2>/dev/null; wait "$backups" 2>/dev/null || true
    log "backups: $(grep -c . "$WORK/$backend-backups.txt" 2>/dev/null || echo 0) taken, $(grep -c failed "$WORK/$backend-backups.txt" 2>/dev/null || true) failed, ms each: $(grep -v failed "$WORK/$backend-backups.txt" 2>/dev/null | tr '\n' ' ')"
  fi
  if [[ -n ${SOAK_SLOW_DISK:-} ]]; then
    # Proof that the throttle applied: the I/O the cgroup saw (0 would mean an unthrottled run).
    log "slow disk: $(awk '$1 == "Total" {print $2}' /sys/fs/cgroup/blkio/basalt-soak/blkio.throttle.io_serviced) I/O requests went through the throttle"
  fi
  kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
}

for backend in $BACKENDS; do
  case $backend in
    sqlite) soak sqlite --data "$WORK/sqlite-data" ;;
    postgres)
      for d in /usr/lib/postgresql/15/bin $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -rV); do
        [[ -x $d/initdb ]] && { PG_BIN=$d; break; }
      done
      [[ -n $PG_BIN ]] || die "no PostgreSQL server binaries"
      PGDATA=$(mktemp -d); chown postgres: "$PGDATA"
      runuser -u postgres -- "$PG_BIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
      pg_port=$(free_port)
      # Durable settings (fsync on): the soak measures a deployment, not a test fixture.
      runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w -o \
        "-c listen_addresses=127.0.0.1 -p $pg_port -c unix_socket_directories='$PGDATA' -c max_connections=200" start >/dev/null
      soak postgres --database "postgres://postgres@127.0.0.1:$pg_port/postgres"
      ;;
    *) die "unknown backend $backend" ;;
  esac
done

python3 - "$OUT/results.jsonl" >"$OUT/table.md" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| backend | minute | req/s | p99 ms | RSS MiB | WAL MiB | records | non-2xx |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for r in rows:
    print("| %s | %d | %.0f | %.1f | %.0f | %s | %d | %d |" % (r["backend"], r["minute"], r["rps"], r["p99_us"] / 1000, r["rss_kb"] / 1024,
          "%.1f" % (r["wal_bytes"] / 1048576) if r["backend"] == "sqlite" else "–", r.get("records", 0), r["non2xx"]))
PY
cat "$OUT/table.md"
