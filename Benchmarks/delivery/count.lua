-- wrk script: sends each pre-signed request of a file once, then only repeats the last one (a
-- cheap duplicate). wrk runs for its whole duration regardless, so run.sh stops it (SIGINT) once
-- the gateway has accepted them all. wrk ... -s count.lua URL -- <requests file> <threads>
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local file, nthreads = args[1], tonumber(args[2])
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
  answered = 0
  non200 = 0
end

function request()
  position = position + 1
  if position > #requests then
    -- Every request was sent; repeat the last one (a cheap duplicate) until the answers are in.
    position = #requests + 1
    return requests[#requests]
  end
  return requests[position]
end

function response(status, headers, body)
  answered = answered + 1
  if status ~= 200 then non200 = non200 + 1 end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do bad = bad + thread:get("non200") end
  io.write(string.format("WRK requests=%d non200=%d\n", summary.requests, bad))
end
