-- wrk script: GET /api/buddies?user_id=<random 1..5000>, prints the figures poolproof's
-- loadcheck example prints. THINK_MS (env) adds a per-connection think time (pacing).
math.randomseed(os.time())
local think = tonumber(os.getenv("THINK_MS") or "0")
request = function()
  return wrk.format("GET", "/api/buddies?user_id=" .. math.random(1, 5000))
end
if think > 0 then
  delay = function() return think end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("wrk requests=%d errors=%d non2xx=%d rps=%.1f p50_ms=%.3f p90_ms=%.3f p95_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
    summary.requests, e.connect + e.read + e.write + e.timeout, e.status,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
