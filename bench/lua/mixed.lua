-- Workload "mixed" (the soak): 60% GET one record, 20% the filtered list, 10% PATCH, 10% POST,
-- rotating over known ids. Basalt paths only.
-- usage: wrk -s bench/lua/mixed.lua http://HOST:PORT -- IDS_FILE LIST_PATH
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")
setup, done = common.setup, common.done

local ids, list_path, i, n

function init(args)
  ids, i = common.ids_for_thread(args[1])
  list_path = args[2]
  n = 0
  common.json_headers()
end

function request()
  n = n + 1
  local k = n % 10
  if k < 6 then
    i = i % #ids + 1
    return wrk.format("GET", "/v1/posts/" .. ids[i])
  elseif k < 8 then
    return wrk.format("GET", list_path)
  elseif k < 9 then
    i = i % #ids + 1
    return wrk.format("PATCH", "/v1/posts/" .. ids[i], nil, string.format('{"views":%d}', n % 1001))
  else
    return wrk.format("POST", "/v1/posts", nil, string.format(
      '{"title":"soak %d","body":"written under sustained load","status":"draft","views":%d,"author":"soak"}', n, n % 1001))
  end
end
