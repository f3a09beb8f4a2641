-- wrk script: replays pre-signed requests from a file, each thread its own share, never wrapping
-- silently (a wrapped run reports it, since repeats would be cheap duplicates).
-- wrk ... -s requests.lua URL -- <requests file> <threads> [once]
-- With "once", each request is sent once and then only the last one is repeated (a cheap
-- duplicate); wrk still runs for its whole duration, so the caller stops it.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local file, nthreads = args[1], tonumber(args[2])
  once = args[3] == "once"
  local path = wrk.path
  requests = {}
  local index = 0
  for line in io.lines(file) do
    if index % nthreads == id then
      local name, value, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
      requests[#requests + 1] = wrk.format("POST", path, { [name] = value, ["Content-Type"] = "application/json" }, body)
    end
    index = index + 1
  end
  position = 0
  wrapped = 0
  non200 = 0
end

function request()
  position = position + 1
  if position > #requests then
    if once then
      position = #requests
      return requests[position]
    end
    position = 1
    wrapped = wrapped + 1
  end
  return requests[position]
end

function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end

function done(summary, latency, requests)
  local wraps, bad = 0, 0
  for _, thread in ipairs(threads) do
    wraps = wraps + thread:get("wrapped")
    bad = bad + thread:get("non200")
  end
  io.write(string.format("RESULT rps=%.0f p50_ms=%.2f p99_ms=%.2f requests=%d errors=%d non200=%d wrapped=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    bad, wraps))
end
