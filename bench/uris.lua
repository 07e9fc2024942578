-- wrk script: a different path on every request, so that nginx's edge deny cache (keyed by
-- method, subject and URI) misses and the responder's per-worker deny cache has to answer.
--   URIS        how many distinct paths cycle (default 100000)
--   URI_PREFIX  the path before the number (default "/deny/u"); ".txt" follows it
--   WRK_THREADS wrk's -t (default 2): thread i sends i, i+T, i+2T, ...
local uris = tonumber(os.getenv("URIS") or "") or 100000
local prefix = os.getenv("URI_PREFIX") or "/deny/u"
local stride = tonumber(os.getenv("WRK_THREADS") or "") or 2

local next_id = 0

function setup(thread)
  thread:set("thread_index", next_id)
  next_id = next_id + 1
end

local counter

function init(args)
  counter = (thread_index or 0) % uris
end

function request()
  local path = prefix .. counter .. ".txt"
  counter = counter + stride
  if counter >= uris then counter = counter % uris end
  return wrk.format(nil, path)
end
