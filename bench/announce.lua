-- wrk script: announces over the info hashes listed in $HASHES_LUA (a Lua file returning
-- a table of percent-encoded hashes), each time as a fresh random peer, with mixed events.
local hashes = dofile(os.getenv("HASHES_LUA"))
math.randomseed(os.time())
local events = { "&event=started", "", "", "", "", "", "", "", "&event=completed", "&event=stopped" }

-- $PIPELINE requests are sent back to back per round trip (HTTP/1.1 pipelining; default 1).
local depth = tonumber(os.getenv("PIPELINE") or "1")

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

request = function()
  if depth == 1 then return announce() end
  local batch = {}
  for i = 1, depth do batch[i] = announce() end
  return table.concat(batch)
end

-- Count non-200 answers so a broken run cannot pass as a fast one.
local bad = 0
response = function(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end
done = function(summary, latency, requests)
  io.write(string.format("non-200: %d\n", bad))
end
