-- wrk script: every request is a valid, new SRS (or ORS) submission.
--
--   wrk -t2 -c16 -d20s -s bench/submit.lua URL -- EPISODES_FILE KEY THREADS BASE OUT_JSON [INSTRUMENT]
--
-- INSTRUMENT is srs (the default) or ors (bench/run's INSTRUMENT): the same body every time, the
-- SRS of the design (total 35.3) or an ORS of 7.5 on each item (total 30.0, bench/setup.py says
-- why).
--
-- EPISODES_FILE holds one episode id per line. Thread `id` (0..THREADS-1) numbers its requests
-- c = 0, 1, 2, ...; g = c * THREADS + id is unique across threads, and request g goes to
-- episode g % E with session number BASE + floor(g / E) + 1. So (episode, session) never repeats
-- within a run, and the next run starts above this run's `max_session` (written to OUT_JSON).

local thread_list = {}
local next_id = 0

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
   table.insert(thread_list, thread)
end

-- Globals below live in each thread's Lua state; done() reads them with thread:get().
local episodes, key, threads, base, instrument, answers
counter = 0
max_session = 0
statuses = {}
first_error = nil
out_path = nil

local ANSWERS = {
   srs = '"answers":{"relationship":9.1,"goals_topics":8.4,'
      .. '"approach_method":9.0,"overall":8.8}',
   ors = '"answers":{"individually":7.5,"interpersonally":7.5,'
      .. '"socially":7.5,"overall":7.5}',
}

function init(args)
   local file = assert(io.open(args[1], "r"))
   episodes = {}
   for line in file:lines() do
      if line ~= "" then table.insert(episodes, line) end
   end
   file:close()
   assert(#episodes > 0, "no episode ids in " .. args[1])
   key = args[2]
   threads = tonumber(args[3])
   base = tonumber(args[4])
   out_path = args[5]
   instrument = args[6] or "srs"
   answers = ANSWERS[instrument]
   assert(answers, "unknown instrument " .. instrument .. " (srs or ors)")
end

function request()
   local g = counter * threads + id
   counter = counter + 1
   local episode = episodes[(g % #episodes) + 1]
   local session = base + math.floor(g / #episodes) + 1
   if session > max_session then max_session = session end
   local body = string.format(
      '{"episode_id":"%s","instrument":"%s","session_number":%d,"respondent":"client",%s}',
      episode, instrument, session, answers)
   return wrk.format("POST", "/v1/submissions", {
      ["Authorization"] = "Bearer " .. key,
      ["Content-Type"] = "application/json",
   }, body)
end

function response(status, headers, body)
   local k = tostring(status)
   statuses[k] = (statuses[k] or 0) + 1
   if (status < 200 or status > 299) and first_error == nil then
      first_error = k .. " " .. string.sub(body or "", 1, 300)
   end
end

local function json_string(s)
   s = string.gsub(s, '[%c"\\]', function(c)
      return string.format("\\u%04x", string.byte(c))
   end)
   return '"' .. s .. '"'
end

function done(summary, latency, requests)
   local counts, ok, non2xx = {}, 0, 0
   local errors = {}
   local max_sess, path = 0, nil
   for _, t in ipairs(thread_list) do
      for k, v in pairs(t:get("statuses") or {}) do
         counts[k] = (counts[k] or 0) + v
      end
      local sample = t:get("first_error")
      if sample ~= nil and #errors < 3 then table.insert(errors, json_string(sample)) end
      max_sess = math.max(max_sess, t:get("max_session") or 0)
      path = path or t:get("out_path")
   end
   local parts = {}
   for k, v in pairs(counts) do
      table.insert(parts, string.format('"%s":%d', k, v))
      local code = tonumber(k)
      if code >= 200 and code <= 299 then ok = ok + v else non2xx = non2xx + v end
   end
   local e = summary.errors
   local seconds = summary.duration / 1e6
   local out = string.format(
      '{"requests":%d,"ok":%d,"non2xx":%d,"duration_s":%.3f,"rps":%.2f,"rps_ok":%.2f,'
         .. '"latency_ms":{"p50":%.3f,"p90":%.3f,"p99":%.3f,"max":%.3f,"mean":%.3f},'
         .. '"statuses":{%s},"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},'
         .. '"error_samples":[%s],"max_session":%d}',
      summary.requests, ok, non2xx, seconds, summary.requests / seconds, ok / seconds,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000,
      latency:percentile(99) / 1000, latency.max / 1000, latency.mean / 1000,
      table.concat(parts, ","), e.connect, e.read, e.write, e.timeout,
      table.concat(errors, ","), max_sess)
   local file = assert(io.open(path, "w"))
   file:write(out, "\n")
   file:close()
   io.write("result: ", out, "\n")
end
