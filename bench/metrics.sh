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

seed_ids
get_ab metrics "BASALT_METRICS=on" "BASALT_METRICS=off"
