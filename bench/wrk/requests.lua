-- Replays the requests of a data file written by bench/load.py, then prints one JSON line.
-- wrk ... -s bench/wrk/requests.lua <url> -- <data file> <rotate|consume> <threads>
--   rotate:  every thread cycles through all the requests, the threads' starting points evenly
--            spaced (so their in-flight requests are far apart: `repay` never has two on one loan);
--   consume: thread i sends requests i, i+threads, i+2*threads, ... (each request once, e.g. one
--            approval per loan); past the end it wraps around, and the repeats fail (counted).
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end

function init(args)
  local data = dofile(args[1])
  mode = args[2]
  local threads = tonumber(args[3])
  reqs = {}
  for i, r in ipairs(data) do
    reqs[i] = wrk.format(r[1], r[2], r[3], r[4])
  end
  n = #reqs
  if mode == "consume" then
    index, step = tid + 1, threads
  else
    index, step = math.floor(tid * n / threads) + 1, 1
  end
end

function request()
  local r = reqs[index]
  index = index + step
  if index > n then
    index = ((index - 1) % n) + 1
  end
  return r
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
