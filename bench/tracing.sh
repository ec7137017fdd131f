#!/usr/bin/env bash
# What tracing costs a read: GET by id (bench/lua/get.lua, wrk) against one `basalt serve` on
# SQLite exporting every span over OTLP/HTTP to a local sink (which reads and drops them), and
# with tracing off (as shipped), the same binary, data and workload, rounds alternating, median
# of BENCH_ROUNDS each. The sink shares the two cores, as a collector on the same host would.
#
#   bash bench/tracing.sh                                 # builds .build/release/basalt if missing
#   BASALT_BIN=/path/to/basalt BENCH_ROUNDS=5 BENCH_DURATION=10s bash bench/tracing.sh
#   TRACING_SAMPLER=parentbased_traceidratio TRACING_SAMPLER_ARG=0.1 bash bench/tracing.sh
set -euo pipefail
cd "$(dirname "$0")/.."

source bench/ab.sh

SINK_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 - "$SINK_PORT" <<'PY' &
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200); self.send_header("content-length", "0"); self.end_headers()
    def log_message(self, *a): pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
SINK=$!
trap 'kill $SINK 2>/dev/null; cleanup' EXIT

seed_ids
# TRACING_SAMPLER=parentbased_traceidratio TRACING_SAMPLER_ARG=0.1: one trace in ten recorded.
get_ab tracing "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$SINK_PORT OTEL_TRACES_SAMPLER=${TRACING_SAMPLER:-parentbased_always_on} OTEL_TRACES_SAMPLER_ARG=${TRACING_SAMPLER_ARG:-1}" "OTEL_SDK_DISABLED=true"
