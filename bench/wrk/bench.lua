-- wrk script for the callgate benchmarks.
--   WRK_TARGETS=FILE  each request GETs a random line of FILE (a request path); without it wrk
--                     sends its one static request (the fast path, as for nginx and Prism)
--   WRK_BODY=FILE     every request POSTs FILE's contents as application/json (the batch status
--                     lookup of `bench/run.sh batch`); the URL's path is the target
--   WRK_CALLS=FILE    (with WRK_CALL_PATH) each request POSTs a call authorisation,
--                     {"destination":"+<a random line of FILE>"}, to WRK_CALL_PATH
--   WRK_JSON=FILE     done() writes the run's figures there as one JSON object, with a
--                     latency curve: [percentile, ms] pairs at p = 1 - 10^-x, x = 0, 0.05, ... 5
local targets_file = os.getenv("WRK_TARGETS")
local body_file = os.getenv("WRK_BODY")
local calls_file = os.getenv("WRK_CALLS")

if body_file and #body_file > 0 then
  local f = assert(io.open(body_file, "rb"))
  wrk.method = "POST"
  wrk.body = f:read("*a")
  wrk.headers["Content-Type"] = "application/json"
  f:close()
end

if calls_file and #calls_file > 0 then
  local requests = {}

  function init(args)
    local path = os.getenv("WRK_CALL_PATH")
    -- wrk.format takes these headers instead of wrk.headers (the -H ones): copy those in.
    local headers = {["Content-Type"] = "application/json"}
    for name, value in pairs(wrk.headers) do headers[name] = value end
    for line in io.lines(calls_file) do
      if #line > 0 then
        requests[#requests + 1] = wrk.format("POST", path, headers, '{"destination":"+' .. line .. '"}')
      end
    end
    math.randomseed(os.time() + math.floor(os.clock() * 1e6))
  end

  function request()
    return requests[math.random(#requests)]
  end
elseif targets_file and #targets_file > 0 then
  local requests = {}

  function init(args)
    for line in io.lines(targets_file) do
      if #line > 0 then requests[#requests + 1] = wrk.format("GET", line) end
    end
    math.randomseed(os.time())
  end

  function request()
    return requests[math.random(#requests)]
  end
end

function done(summary, latency, requests)
  local out = os.getenv("WRK_JSON")
  if not out then return end
  local seconds = summary.duration / 1e6
  local e = summary.errors
  local non_2xx = e.status
  local curve = {}
  for i = 0, 100 do
    local p = 100 * (1 - 10 ^ (-i * 0.05))
    if p > 100 * (1 - 1 / math.max(summary.requests, 1)) then break end
    curve[#curve + 1] = string.format("[%.5f,%.4f]", p, latency:percentile(p) / 1000)
  end
  local f = assert(io.open(out, "w"))
  f:write(string.format(
    '{"requests":%d,"duration_s":%.3f,"rps":%.1f,"non_2xx":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},' ..
    '"latency_ms":{"mean":%.4f,"p50":%.4f,"p90":%.4f,"p99":%.4f,"p999":%.4f,"max":%.4f},' ..
    '"curve":[%s]}\n',
    summary.requests, seconds, summary.requests / seconds, non_2xx,
    e.connect, e.read, e.write, e.timeout,
    latency.mean / 1000, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency:percentile(99.9) / 1000, latency.max / 1000,
    table.concat(curve, ",")))
  f:close()
end
