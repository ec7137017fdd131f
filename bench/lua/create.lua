-- Workload "create": POST a new record.
-- usage: wrk -s bench/lua/create.lua http://HOST:PORT -- COLLECTION_PATH
--   Basalt: -- /v1/posts        PocketBase: -- /api/collections/posts/records
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")
setup, done = common.setup, common.done

local path, n

function init(args)
  path = args[1]
  n = (thread_index or 0) * 1000000000
  common.json_headers()
end

function request()
  n = n + 1
  local body = string.format(
    '{"title":"bench post %d","body":"created by wrk during the create workload",' ..
    '"status":"%s","views":%d,"author":"wrk"}',
    n, (n % 2 == 0) and "published" or "draft", n % 1001)
  return wrk.format("POST", path, nil, body)
end
