-- Workload "patch": PATCH one field of a known record, rotating over known ids
-- (JSON Merge Patch on Basalt, a partial update on PocketBase: the same request body).
-- usage: wrk -s bench/lua/patch.lua http://HOST:PORT -- RECORD_PATH_PREFIX IDS_FILE
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")
setup, done = common.setup, common.done

local prefix, ids, i, n

function init(args)
  prefix = args[1]
  ids, i = common.ids_for_thread(args[2])
  n = 0
  common.json_headers()
end

function request()
  i = i % #ids + 1
  n = n + 1
  return wrk.format("PATCH", prefix .. ids[i], nil, string.format('{"views":%d}', n % 1001))
end
