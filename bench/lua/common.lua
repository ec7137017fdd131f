-- Shared by the workload scripts (loaded with dofile, see the top of each script).
-- Every wrk thread has its own Lua state, so this file runs once per thread and once
-- in the main state where setup() and done() are called.
local M = {}

-- One id a line, as written by bench/seed.py.
function M.read_ids(path)
  local ids = {}
  local f = assert(io.open(path, "r"), "cannot open ids file " .. tostring(path))
  for line in f:lines() do
    if #line > 0 then ids[#ids + 1] = line end
  end
  f:close()
  assert(#ids > 0, "no ids in " .. path)
  return ids
end

-- Number the threads so each starts rotating at a different place in the id list
-- (two threads hammering the same rows would measure lock contention, not the API).
local next_thread = 0
function M.setup(thread)
  thread:set("thread_index", next_thread)
  next_thread = next_thread + 1
end

-- A thread's share of the ids: the list, and where this thread starts rotating in it.
function M.ids_for_thread(path)
  local ids = M.read_ids(path)
  return ids, (thread_index or 0) * math.floor(#ids / 2)
end

-- The headers of a JSON-speaking client (writes send a JSON body).
function M.json_headers()
  wrk.headers["Accept"] = "application/json"
  wrk.headers["Content-Type"] = "application/json"
end

-- One machine-readable line that bench/run.sh greps for; wrk's own text is kept in the log.
-- Latencies are in microseconds. status = responses >= 400 (wrk's "Non-2xx or 3xx").
function M.done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"rps":%.1f,"p50_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"non2xx":%d,"socket_errors":%d}\n',
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), latency.max,
    e.status, e.connect + e.read + e.write + e.timeout))
end

return M
