-- wrk script for the Packyard benchmark: one fixed request, auth header, JSON summary.
-- Configured through the environment so one script serves every endpoint:
--   BENCH_METHOD (GET), BENCH_BODY (JSON body, for POST), BENCH_TOKEN (bearer token),
--   BENCH_COOKIE (a Cookie header: the console's session, for its pages).
wrk.method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
if body ~= nil and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
local token = os.getenv("BENCH_TOKEN")
if token ~= nil and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
local cookie = os.getenv("BENCH_COOKIE")
if cookie ~= nil and cookie ~= "" then
  wrk.headers["Cookie"] = cookie
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_JSON {\"requests\":%d,\"duration_us\":%d,\"bytes\":%d," ..
    "\"errors_connect\":%d,\"errors_read\":%d,\"errors_write\":%d," ..
    "\"errors_status\":%d,\"errors_timeout\":%d," ..
    "\"latency_p50_us\":%d,\"latency_p90_us\":%d,\"latency_p99_us\":%d," ..
    "\"latency_max_us\":%d,\"latency_mean_us\":%.1f}\n",
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
