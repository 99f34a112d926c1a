-- wrk script for bench/api_bench.py. Everything comes from the environment:
--   BENCH_METHOD  GET or POST
--   BENCH_PATHS   newline-separated request paths, used in turn
--   BENCH_BODIES  newline-separated JSON bodies (POST), used in turn
--   BENCH_AUTH    value of the Authorization header, or empty
-- done() prints one line "BENCH_JSON {...}" with the summary, parsed by api_bench.py.
-- Latencies are in microseconds, as wrk keeps them.

local function split_lines(text)
  local out = {}
  for line in string.gmatch(text or "", "[^\n]+") do
    table.insert(out, line)
  end
  return out
end

local method = os.getenv("BENCH_METHOD") or "GET"
local paths = split_lines(os.getenv("BENCH_PATHS"))
local bodies = split_lines(os.getenv("BENCH_BODIES"))
local auth = os.getenv("BENCH_AUTH") or ""
local counter = 0

if #paths == 0 then
  paths = { "/" }
end

function request()
  counter = counter + 1
  local headers = { ["Accept"] = "application/json" }
  if auth ~= "" then
    headers["Authorization"] = auth
  end
  local body = nil
  if #bodies > 0 then
    body = bodies[(counter % #bodies) + 1]
    headers["Content-Type"] = "application/json"
  end
  return wrk.format(method, paths[(counter % #paths) + 1], headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"duration_us": %d, "requests": %d, "bytes": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
      .. '"latency_us": {"mean": %.1f, "max": %d, "p50": %d, "p90": %d, "p95": %d, "p99": %d}}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99)
  ))
end
