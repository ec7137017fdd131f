-- Workload "get": GET one record by id, rotating over known ids.
-- usage: wrk -s bench/lua/get.lua http://HOST:PORT -- RECORD_PATH_PREFIX IDS_FILE [BEARER_TOKEN]
--   Basalt:     -- /v1/posts/                        ids.txt
--   PocketBase: -- /api/collections/posts/records/   ids.txt
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")
setup, done = common.setup, common.done

local prefix, ids, i

function init(args)
  prefix = args[1]
  ids, i = common.ids_for_thread(args[2])
  wrk.headers["Accept"] = "application/json"
  if args[3] then wrk.headers["Authorization"] = "Bearer " .. args[3] end
end

function request()
  i = i % #ids + 1
  return wrk.format("GET", prefix .. ids[i])
end
