-- wrk script: announces over the info hashes listed in $HASHES_LUA (a Lua file returning
-- a table of percent-encoded hashes), each time as a fresh random peer (random peer id and
-- port), with mixed events, compact=1, numwant=50.
--
-- The requests are built before the clock starts ($POOL of them, default 1,200,000, then
-- reused in order), and there is no `response` callback: per-request Lua work made wrk,
-- not the tracker, the bottleneck (wrk at 99% of its core, the tracker at 82%). wrk counts
-- answers other than 2xx/3xx itself ("Non-2xx or 3xx responses").
local hashes = dofile(os.getenv("HASHES_LUA"))
local events = { "&event=started", "", "", "", "", "", "", "", "&event=completed", "&event=stopped" }

-- $PIPELINE requests are sent back to back per round trip (HTTP/1.1 pipelining; default 1).
local depth = tonumber(os.getenv("PIPELINE") or "1")
local size = tonumber(os.getenv("POOL") or "1200000")

local function announce()
  local hash = hashes[math.random(#hashes)]
  local id = string.format("-WRK001-%06d%06d", math.random(0, 999999), math.random(0, 999999))
  local left = (math.random(4) == 1) and "0" or "1000"
  local path = "/announce?info_hash=" .. hash .. "&peer_id=" .. id
    .. "&port=" .. math.random(1, 65535)
    .. "&uploaded=0&downloaded=0&left=" .. left
    .. "&compact=1&numwant=50" .. events[math.random(#events)]
  return wrk.format("GET", path)
end

local pool = {}
local next_request = 0

-- Runs in each thread's Lua state only (not in the one wrk's main thread uses for setup).
init = function(args)
  math.randomseed(os.time())
  local batches = math.max(1, math.floor(size / depth))
  for i = 1, batches do
    if depth == 1 then
      pool[i] = announce()
    else
      local batch = {}
      for j = 1, depth do batch[j] = announce() end
      pool[i] = table.concat(batch)
    end
  end
end

request = function()
  next_request = next_request % #pool + 1
  return pool[next_request]
end
