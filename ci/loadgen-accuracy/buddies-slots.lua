-- wrk script: GET /api/buddies?user_id=<random 1..5000> at RATE requests/s (env) paced the
-- way poolproof paces: one shared schedule of slots 1/RATE apart across all connections of
-- the (single) thread, a late request goes at once without catch-up. Prints the figures
-- poolproof's loadcheck example prints. Run with -t1 so every connection shares the schedule.
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } pp_timespec;
  int clock_gettime(int clk, pp_timespec *ts);
]]
local ts = ffi.new("pp_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end
math.randomseed(os.time())
local rate = tonumber(os.getenv("RATE") or "0")
local interval = rate > 0 and 1000 / rate or 0
local next_slot = nil

request = function()
  return wrk.format("GET", "/api/buddies?user_id=" .. math.random(1, 5000))
end
if interval > 0 then
  -- Called after each response: how long this connection waits before its next request.
  delay = function()
    local now = now_ms()
    local slot = next_slot and math.max(next_slot, now) or now
    next_slot = slot + interval
    return math.floor(slot - now + 0.5)
  end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("wrk requests=%d errors=%d non2xx=%d rps=%.1f p50_ms=%.3f p90_ms=%.3f p95_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
    summary.requests, e.connect + e.read + e.write + e.timeout, e.status,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
