-- Workload "list": a filtered, sorted page of 20. The path and query string come from the
-- URL given to wrk (wrk.path), already percent-encoded by bench/run.sh:
--   Basalt:     /v1/posts?filter=status = 'published' && views > 500&sort=-views&limit=20
--   PocketBase: /api/collections/posts/records?filter=...&sort=-views&perPage=20&skipTotal=1
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")
setup, done = common.setup, common.done

function init(args)
  wrk.headers["Accept"] = "application/json"
end
