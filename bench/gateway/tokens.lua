-- SPDX-License-Identifier: Apache-2.0
-- wrk script of bench/gateway.sh: every request carries "Authorization: Bearer <token>", the tokens
-- taken in turn from a file (one per line). The requests are built once in init(), so request()
-- costs the same for every target and every file. Each wrk thread gets its own slice of the file,
-- so no two threads send the same token; a thread that runs out of its slice starts it again,
-- and done() says how often that happened ("wraps"), since a repeated token may hit a cache.
--
-- usage: wrk [options] -s tokens.lua URL -- FILE THREADS FIRST COUNT
--   FILE     the tokens, one per line
--   THREADS  wrk's -t (to cut the slices)
--   FIRST    the first line to use (0-based); COUNT lines from there are shared by the threads
-- done() prints one line:
--   RESULT requests=N duration_us=N mean_us=N p50_us=N p90_us=N p99_us=N max_us=N
--          status_errors=N socket_errors=N used=N wraps=N

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

function init(args)
   local file, nthreads = args[1], tonumber(args[2])
   local first, count = tonumber(args[3]), tonumber(args[4])
   local per = math.floor(count / nthreads)
   if per < 1 then
      error("tokens.lua: fewer tokens than threads")
   end
   local lo = first + id * per
   local hi = lo + per - 1
   reqs = {}
   local line_no = 0
   for line in io.lines(file) do
      if line_no >= lo and line ~= "" then
         reqs[#reqs + 1] = wrk.format("GET", wrk.path, {
            ["Host"] = wrk.host,
            ["Authorization"] = "Bearer " .. line,
         })
      end
      line_no = line_no + 1
      if line_no > hi then
         break
      end
   end
   if #reqs < per then
      error(string.format("tokens.lua: %s has only %d of lines %d..%d", file, #reqs, lo, hi))
   end
   n, i, used, wraps = #reqs, 0, 0, 0
end

function request()
   i = i + 1
   if i > n then
      i = 1
      wraps = wraps + 1
   end
   used = used + 1
   return reqs[i]
end

function done(summary, latency, requests)
   local used_all, wraps_all = 0, 0
   for _, t in ipairs(threads) do
      used_all = used_all + (t:get("used") or 0)
      wraps_all = wraps_all + (t:get("wraps") or 0)
   end
   local e = summary.errors
   io.write(string.format(
      "RESULT requests=%d duration_us=%d mean_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
      "status_errors=%d socket_errors=%d used=%d wraps=%d\n",
      summary.requests, summary.duration, latency.mean, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max, e.status, e.connect + e.read + e.write + e.timeout,
      used_all, wraps_all))
end
