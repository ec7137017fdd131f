#!/usr/bin/env bash
# Basalt's test command (the one the README and CI run):
#   1. the Swift tests (`swift test`), with a throwaway PostgreSQL 15 so the PostgreSQL backend
#      is tested too (BASALT_TEST_POSTGRES_URL);
#   2. the HTTP contract checks: a real `basalt serve` on each backend, its /v1/openapi.json
#      validated as OpenAPI and fuzzed by schemathesis with every check.
#
#   bash scripts/test.sh                   # everything
#   bash scripts/test.sh --filter Records  # extra arguments go to `swift test`
#   SKIP_CONTRACT=1 bash scripts/test.sh   # Swift tests only
#   SKIP_SWIFT_TESTS=1 bash scripts/test.sh  # contract checks only
#
# Other knobs: CONTRACT_MAX_EXAMPLES (default 30 per operation), CONTRACT_SEED (schemathesis
# seed; random by default and printed on failure), BASALT_BUILD_LOCK (a file to flock around
# Swift builds, for machines where several checkouts build at once).
#
# It installs what is missing (Debian packages, PyPI packages), so it works on a fresh Debian
# machine that has only Swift. Everything it starts is stopped, and everything temporary is
# removed, on any exit.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '==> %s\n' "$*"; }
die() { printf 'test.sh: %s\n' "$*" >&2; exit 1; }

# ---- cleanup ----------------------------------------------------------------------------------
TMP_ROOT=$(mktemp -d)   # contract data dirs, downloaded documents, logs
PGDATA=""               # the PostgreSQL cluster, separate: it must be owned by the postgres user
PG_BIN=""
SERVER_PIDS=()
cleanup() {
  local status=$? pid
  for pid in "${SERVER_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${SERVER_PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [[ -n $PGDATA && -f $PGDATA/postmaster.pid ]]; then
    # immediate: no checkpoint, the data is thrown away anyway.
    as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$TMP_ROOT"
  if [[ -n $PGDATA ]]; then rm -rf "$PGDATA"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT   # Ctrl-C and kill still run the EXIT trap
trap 'exit 143' TERM

# ---- tools --------------------------------------------------------------------------------------
APT_UPDATED=0
apt_install() {
  [[ $(id -u) == 0 ]] || die "missing $*; install it (apt-get install $*) or run as root"
  if [[ $APT_UPDATED == 0 ]]; then
    log "apt-get update"
    apt-get update -qq
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

command -v swift >/dev/null || die "swift is not on PATH"
command -v curl >/dev/null || apt_install curl ca-certificates
# GRDB links the system SQLite: its headers must be there to build.
[[ -f /usr/include/sqlite3.h ]] || apt_install libsqlite3-dev

# PostgreSQL server binaries: Debian keeps them off PATH, under /usr/lib/postgresql/VERSION/bin.
# Prefer 15 (what we target), then any installed version, then whatever PATH has.
find_pg_bin() {
  local d
  for d in /usr/lib/postgresql/15/bin $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -rV); do
    if [[ -x $d/initdb && -x $d/pg_ctl ]]; then echo "$d"; return 0; fi
  done
  if command -v initdb >/dev/null; then dirname "$(readlink -f "$(command -v initdb)")"; return 0; fi
  return 1
}
if ! PG_BIN=$(find_pg_bin); then
  # Debian's package would create and start a "main" cluster on port 5432 that we do not
  # want; postgresql-common skips that with this setting.
  if [[ $(id -u) == 0 ]]; then
    mkdir -p /etc/postgresql-common/createcluster.d
    echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.d/basalt-test.conf
  fi
  apt_install postgresql-15 || apt_install postgresql
  PG_BIN=$(find_pg_bin) || die "PostgreSQL server binaries not found after installing"
fi
[[ -x $PG_BIN/psql ]] || apt_install postgresql-client

# initdb refuses to run as root: as root, run the server as the postgres user.
if [[ $(id -u) == 0 ]]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin postgres
  as_postgres() { runuser -u postgres -- "$@"; }
else
  as_postgres() { "$@"; }
fi

# Optional: serialize Swift builds with other builds on a shared machine.
locked() { if [[ -n ${BASALT_BUILD_LOCK:-} ]]; then flock "$BASALT_BUILD_LOCK" "$@"; else "$@"; fi; }

# First port from $1 on that nothing listens on (bash's /dev/tcp, so no extra tool is needed).
free_port() {
  local p
  for p in $(seq "$1" $(( $1 + 500 ))); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  die "no free port from $1"
}

# Python peers of the tests: schemathesis and openapi-spec-validator (contract), joserfc (tokens
# verified by an independent JOSE library), aiosmtpd (a real SMTP server for the mail tests),
# standardwebhooks and cloudevents (webhook signatures and events checked by independent SDKs),
# opentelemetry-proto (the OTLP receiver of the tracing test decodes spans with it),
# openapi-python-client and openapi-generator-cli (clients generated from our documents; the
# latter runs on Java), Authlib and oidc-provider-mock (an independent OAuth client of our
# authorization server, and a real OpenID provider for sign-in with other providers), Playwright
# driving Debian's Chromium (the consent page, in a real browser).
# Debian's own python refuses `pip install` outside a virtualenv (PEP 668); on such a throwaway
# test machine installing anyway is what we want.
command -v python3 >/dev/null || apt_install python3
python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
command -v openssl >/dev/null || apt_install openssl   # self-signed certificates for STARTTLS tests
command -v java >/dev/null || apt_install default-jre-headless   # openapi-generator-cli
command -v chromium >/dev/null || apt_install chromium   # the consent page test (Playwright drives it)
# One `pip show` per package: with several names it succeeds when any one is installed.
python_peers=(schemathesis openapi-spec-validator joserfc aiosmtpd standardwebhooks cloudevents prometheus_client
  opentelemetry-proto openapi-python-client openapi-generator-cli authlib oidc-provider-mock playwright requests httpx)
missing=()
for pkg in "${python_peers[@]}"; do
  python3 -m pip show -q "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if (( ${#missing[@]} )); then
  log "pip install ${missing[*]}"
  python3 -m pip install -q "${missing[@]}" 2>/dev/null \
    || python3 -m pip install -q --break-system-packages "${missing[@]}"
fi
log "python peers: $(for p in "${python_peers[@]}"; do printf '%s %s  ' "$p" "$(python3 -m pip show "$p" | awk '/^Version/{print $2}')"; done)"

# ---- PostgreSQL ---------------------------------------------------------------------------------
log "starting PostgreSQL ($("$PG_BIN/postgres" --version))"
PGDATA=$(mktemp -d)
if [[ $(id -u) == 0 ]]; then chown postgres: "$PGDATA"; fi
# trust on loopback only: it listens on 127.0.0.1 alone and lives for this run.
# C locale: text order by code point, as the API promises (API.md §3).
as_postgres "$PG_BIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C >"$TMP_ROOT/initdb.log" 2>&1 \
  || { cat "$TMP_ROOT/initdb.log" >&2; die "initdb failed"; }
PG_PORT=$(free_port 54329)
# fsync off and friends: a crash loses nothing we care about, and tests run much faster.
as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories='$PGDATA' \
      -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
  start >/dev/null || { cat "$PGDATA/server.log" >&2; die "PostgreSQL did not start"; }
psql_admin() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres "$@"; }
psql_admin -c 'CREATE DATABASE basalt_test'
export BASALT_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PG_PORT/basalt_test"
# The fault tests start (and stop, and restart) a PostgreSQL of their own with these binaries.
export BASALT_TEST_PG_BIN="$PG_BIN"
log "PostgreSQL is up: $BASALT_TEST_POSTGRES_URL"

FAILED=()

# ---- Swift tests --------------------------------------------------------------------------------
# Formatting first (the toolchain's swift-format, with the checked-in .swift-format): it fails
# in seconds, before a build. Warnings are errors in our targets (Package.swift).
log "swift format lint --strict"
swift format lint --strict -r Sources Tests Package.swift examples bench || FAILED+=("swift format lint")
log "building (swift build --build-tests)"
locked swift build --build-tests
if [[ ${SKIP_SWIFT_TESTS:-0} == 1 ]]; then
  log "SKIP_SWIFT_TESTS=1: Swift tests skipped"
else
  # Bounded: a hung test must fail the run, not stall CI. One rerun on failure, said loudly: about
  # one full run in ten has hung (two tests never finishing, no thread busy; under investigation,
  # see the issue note), and a genuine failure fails the rerun too.
  log "running tests (swift test --skip-build${*:+ $*})"
  if ! timeout -k 30 900 swift test --skip-build "$@"; then
    log "swift test FAILED or timed out; running it once more to tell a flake from a failure"
    if ! timeout -k 30 900 swift test --skip-build "$@"; then
      FAILED+=("swift test")
    else
      log "WARNING: swift test passed only on the second run (flaky test; see the log above)"
    fi
  fi
fi

# ---- contract checks ----------------------------------------------------------------------------
# contract NAME DATA_ARGS... — serve tests/fixtures/all-types.yaml on one backend, validate the
# OpenAPI document it publishes, and fuzz the API described there with schemathesis.
contract() {
  local name=$1; shift
  local dir=$TMP_ROOT/contract-$name key port base pid author_id
  mkdir -p "$dir"

  key=$("$BASALT" admin key create --name ci "$@") || { echo "admin key create failed" >&2; return 1; }
  port=$(free_port 18080)
  base=http://127.0.0.1:$port
  log "contract ($name): starting basalt serve on $base"
  "$BASALT" serve --http "127.0.0.1:$port" "$@" --schema tests/fixtures/all-types.yaml >"$dir/server.log" 2>&1 &
  pid=$!
  SERVER_PIDS+=("$pid")

  local ready=0
  for _ in $(seq 600); do   # 60 s
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    if [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$base/health/ready" || true) == 200 ]]; then
      ready=1; break
    fi
    sleep 0.1
  done
  if [[ $ready == 0 ]]; then
    echo "basalt serve did not become ready within 60 s; its log:" >&2
    tail -50 "$dir/server.log" >&2
    return 1
  fi

  local rc=0
  curl -fsS -H "Authorization: Bearer $key" "$base/v1/openapi.json" -o "$dir/openapi.json" || rc=1
  if [[ $rc == 0 ]]; then
    log "contract ($name): openapi-spec-validator"
    python3 -m openapi_spec_validator "$dir/openapi.json" || rc=1
  fi

  # An existing author, for the schemathesis hooks (a relation must point at a real record).
  if [[ $rc == 0 ]]; then
    author_id=$(curl -fsS -X POST -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
        -d '{"name": "Contract author"}' "$base/v1/authors" \
      | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])') || rc=1
  fi

  if [[ $rc == 0 ]]; then
    log "contract ($name): schemathesis"
    # --checks all: every check, none excluded. Where our documented contract rejects input
    # that is valid JSON Schema (relation targets, filter syntax, cursors, If-Match,
    # idempotency keys), tests/contract/schemathesis.toml and hooks.py say how and why.
    # The URL (not the downloaded file) so that the document's own servers/base path apply;
    # --header is also sent when fetching it. timeout: a hung run must not stall CI.
    local seed_args=()
    if [[ -n ${CONTRACT_SEED:-} ]]; then seed_args=(--seed "$CONTRACT_SEED"); fi
    BASALT_CONTRACT_AUTHOR_ID=$author_id timeout -k 30 1200 \
      python3 -m schemathesis.cli --config-file tests/contract/schemathesis.toml run \
        "$base/v1/openapi.json" \
        --header "Authorization: Bearer $key" \
        --checks all \
        --max-examples "${CONTRACT_MAX_EXAMPLES:-30}" \
        --generation-database none \
        --request-timeout 30 \
        --no-color \
        "${seed_args[@]}" || rc=1
  fi

  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [[ $rc != 0 ]]; then
    echo "---- last lines of the basalt log ($name) ----" >&2
    tail -40 "$dir/server.log" >&2
  fi
  return "$rc"
}

if [[ ${SKIP_CONTRACT:-0} == 1 ]]; then
  log "SKIP_CONTRACT=1: contract checks skipped"
else
  log "building basalt (swift build --product basalt)"
  locked swift build --product basalt
  BASALT=$(swift build --show-bin-path)/basalt

  if ! contract sqlite --data "$TMP_ROOT/contract-sqlite-data"; then
    FAILED+=("contract (SQLite)")
  fi
  psql_admin -c 'CREATE DATABASE basalt_contract'
  if ! contract postgres --database "postgres://postgres@127.0.0.1:$PG_PORT/basalt_contract"; then
    FAILED+=("contract (PostgreSQL)")
  fi
fi

# ---- verdict --------------------------------------------------------------------------------------
if (( ${#FAILED[@]} )); then
  log "FAILED: ${FAILED[*]}"
  exit 1
fi
log "all passed"
