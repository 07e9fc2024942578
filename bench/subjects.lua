-- wrk script: a different X-Subject header on every request.
--   SUBJECTS        how many distinct values cycle (default 100000)
--   SUBJECT_PREFIX  the text before the number (default "s")
--   WRK_THREADS     wrk's -t (default 2): thread i sends i, i+T, i+2T, ... so that no two
--                   requests in a row (on any thread) share a subject until the cycle wraps.
local subjects = tonumber(os.getenv("SUBJECTS") or "") or 100000
local prefix = os.getenv("SUBJECT_PREFIX") or "s"
local stride = tonumber(os.getenv("WRK_THREADS") or "") or 2

local next_id = 0

function setup(thread)
  thread:set("thread_index", next_id)
  next_id = next_id + 1
end

local counter
local headers = {}

function init(args)
  counter = (thread_index or 0) % subjects
end

function request()
  headers["X-Subject"] = prefix .. counter
  counter = counter + stride
  if counter >= subjects then counter = counter % subjects end
  return wrk.format(nil, nil, headers)
end
