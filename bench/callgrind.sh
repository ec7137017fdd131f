#!/usr/bin/env bash
# Instructions per request, Basalt against the ceiling, on the same data: each server runs under
# `valgrind --tool=callgrind` with instrumentation off; for each workload, after a warm-up,
# instrumentation is switched on for N sequential keep-alive requests, and the instructions
# executed by the whole server process in that window (every thread: event loops, the pool,
# the housekeeping tick) are divided by N. Unlike wall time this does not move with the
# machine's noise; it does not see waiting or cache misses. See bench/README.md.
#
#   BASALT_BIN=/path/to/release/basalt bash bench/callgrind.sh
#   CG_REQUESTS=2000 CG_RECORDS=20000 bash bench/callgrind.sh
#
# Output: bench/out/callgrind-<timestamp>/ (report.txt; the callgrind dumps, readable with
# callgrind_annotate). Exits non-zero on any failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REQUESTS=${CG_REQUESTS:-1000}   # measured requests per workload and server
WARMUP=${CG_WARMUP:-200}        # unmeasured requests before them
RECORDS=${CG_RECORDS:-10000}    # posts seeded (and notes, for get-auth)
FILTER="status = 'published' && views > 500"

log() { printf '==> %s\n' "$*"; }
die() { printf 'callgrind: %s\n' "$*" >&2; exit 1; }

command -v valgrind >/dev/null || { log "installing valgrind"; apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; }
command -v curl >/dev/null || die "curl is needed"

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  sleep 1
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

OUT=bench/out/callgrind-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (dirty)')"
  echo "valgrind: $(valgrind --version)"
  echo "settings: records=$RECORDS requests=$REQUESTS warmup=$WARMUP"
} | tee "$OUT/report.txt"

if [[ -n ${BASALT_BIN:-} ]]; then
  bin=$BASALT_BIN
else
  log "building Basalt (release)"
  swift build -c release --product basalt
  bin=$(swift build -c release --show-bin-path)/basalt
fi
log "building the ceiling (bench/ceiling, release)"
(cd bench/ceiling && swift build -c release >/dev/null)
ceiling=$(cd bench/ceiling && swift build -c release --show-bin-path)/Ceiling

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
urlencode() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
wait_ready() {  # URL PID LOG — valgrind starts slowly: up to 5 minutes
  for _ in $(seq 1500); do
    kill -0 "$2" 2>/dev/null || { tail -20 "$3" >&2; die "server exited before it was ready"; }
    curl -fsS -o /dev/null --max-time 5 "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  die "server not ready: $1"
}

# ---- the data: seeded through Basalt (running natively), copied for the ceiling --------------
data=$WORK/basalt
mkdir -p "$data"
key=$("$bin" admin key create --name bench --data "$data")
port=$(free_port)
base=http://127.0.0.1:$port
log "seeding $RECORDS posts and $RECORDS notes"
"$bin" serve --http "127.0.0.1:$port" --data "$data" --schema bench/posts.yaml --rate-limit-anonymous 0 --rate-limit-subject 0 \
  >"$OUT/seed.log" 2>&1 &
seed_pid=$!
PIDS+=("$seed_pid")
wait_ready "$base/health/ready" "$seed_pid" "$OUT/seed.log"
python3 bench/seed.py --target basalt --url "$base" --token "$key" --count "$RECORDS" --ids-out "$WORK/ids.txt" >/dev/null
python3 - "$base" "$WORK" <<'PY'
import json, sys, urllib.request
base, out = sys.argv[1], sys.argv[2]
def post(path, body):
  req = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
  return json.load(urllib.request.urlopen(req))
user = post("/v1/auth/register", {"email": "bench@example.com", "password": "bench password 123"})
open(out + "/user.txt", "w").write(user["id"])
PY
python3 bench/seed.py --target basalt --url "$base" --token "$key" --count "$RECORDS" --collection notes \
  --set "owner=$(cat "$WORK/user.txt")" --ids-out "$WORK/notes-ids.txt" >/dev/null
kill -TERM "$seed_pid"
wait "$seed_pid" 2>/dev/null || true
python3 -c 'import sqlite3, sys; s = sqlite3.connect(sys.argv[1]); d = sqlite3.connect(sys.argv[2]); s.backup(d); d.close()' \
  "$data/data.db" "$WORK/ceiling.db"

# requests BASE PATH-PREFIX IDS|- COUNT [TOKEN] — sequential keep-alive GETs; each must be 200.
requests() {
  python3 - "$@" <<'PY'
import http.client, sys, urllib.parse
base, prefix, ids, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
token = sys.argv[5] if len(sys.argv) > 5 else None
u = urllib.parse.urlsplit(base)
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
paths = [prefix + line.strip() for line in open(ids) if line.strip()] if ids != "-" else [prefix]
headers = {"Authorization": "Bearer " + token} if token else {}
for i in range(count):
  conn.request("GET", paths[i % len(paths)], headers=headers)
  r = conn.getresponse()
  r.read()
  if r.status != 200: sys.exit(f"GET {paths[i % len(paths)]}: {r.status}")
PY
}

# measure TARGET PID BASE WORKLOAD — prints instructions per request.
measure() {
  local target=$1 pid=$2 base=$3 workload=$4 prefix ids token=()
  case $workload in
    get) prefix=/v1/posts/; ids=$WORK/ids.txt ;;
    get-auth) prefix=/v1/notes/; ids=$WORK/notes-ids.txt; token=("$(cat "$WORK/token.txt")") ;;
    list) prefix="/v1/posts?filter=$(urlencode "$FILTER")&sort=-views&limit=20"; ids=- ;;
  esac
  requests "$base" "$prefix" "$ids" "$WARMUP" "${token[@]}"
  callgrind_control -z "$pid" >/dev/null 2>&1
  callgrind_control -i on "$pid" >/dev/null 2>&1
  requests "$base" "$prefix" "$ids" "$REQUESTS" "${token[@]}"
  callgrind_control -i off "$pid" >/dev/null 2>&1
  callgrind_control -d "$target-$workload" "$pid" >/dev/null 2>&1
  sleep 1
  local dump total
  dump=$(ls -t "$OUT"/callgrind.$target.out.* | head -1)
  total=$(awk '/^totals:/{print $2; exit}' "$dump")
  [[ -n $total ]] || die "no totals in $dump"
  mv "$dump" "$OUT/callgrind.$target-$workload.out"
  printf '%-8s %-9s %12d instructions/request\n' "$target" "$workload" $((total / REQUESTS)) | tee -a "$OUT/report.txt"
}

# run_target NAME WORKLOADS CMD... — the server under callgrind, instrumentation off until asked.
run_target() {
  local name=$1 workloads=$2
  shift 2
  # valgrind 3.19 cannot read Swift 6's DWARF 5: the symbol table is enough to name functions.
  objcopy --strip-debug "$1" "$WORK/$name-stripped"
  shift
  port=$(free_port)
  base=http://127.0.0.1:$port
  log "$name under callgrind on $base"
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT/callgrind.$name.out.%p" \
    "$WORK/$name-stripped" "${@//PORT/$port}" >"$OUT/$name.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  wait_ready "$base/health/ready" "$pid" "$OUT/$name.log"
  if [[ " $workloads " == *" get-auth "* ]]; then
    # Signed in on this server (a token of the seeding run would not outlive its signing keys).
    python3 - "$base" "$WORK/token.txt" <<'PY'
import json, sys, urllib.request
req = urllib.request.Request(sys.argv[1] + "/v1/auth/login", data=json.dumps({"email": "bench@example.com", "password": "bench password 123"}).encode(),
                             headers={"Content-Type": "application/json"})
open(sys.argv[2], "w").write(json.load(urllib.request.urlopen(req, timeout=300))["access_token"])
PY
  fi
  for w in $workloads; do measure "$name" "$pid" "$base" "$w"; done
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  rm -f "$OUT"/callgrind."$name".out.[0-9]*
}

run_target basalt "get get-auth list" "$bin" serve --http 127.0.0.1:PORT --data "$data" --schema bench/posts.yaml \
  --rate-limit-anonymous 0 --rate-limit-subject 0
run_target ceiling "get list" "$ceiling" "$WORK/ceiling.db" PORT
log "report: $OUT/report.txt"
