-- wrk sends the requests of a file written by bench/traffic.py, one a line:
--   METHOD <tab> PATH <tab> BODY (may be empty) [<tab> Name: value]...
--
-- Each wrk thread takes its own slice of the file (setup() gives it the line numbers) and
-- builds its requests once, in init(), so request() only hands out the next one.
--
--   BENCH_REQUESTS  the file
--   BENCH_THREADS   how many threads wrk runs (its -t)
--   BENCH_MODE      "once": a thread stops when its slice is used up, so no line is sent twice
--                   (bench/run.py then ends wrk); "cycle": a thread goes round its slice
--                   until wrk's -d is over
--   BENCH_DONE_DIR  where a thread that stopped leaves a file named after it
--
-- wrk's own duration counts until it is ended, so each thread times itself with
-- CLOCK_MONOTONIC (through LuaJIT's ffi): its first request, its last answer, and how many
-- answers came in each BUCKET_US. A thread whose connections happen to sit on less busy
-- gunicorn workers ends its slice sooner, and the others then run with fewer connections; so
-- done() also counts the answers of the time every thread was running ("full load"). It prints
-- one line "BENCH-JSON {...}" for bench/run.py, after wrk's own report.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *now);
]]
local CLOCK_MONOTONIC = 1
local BUCKET_US = 50000
local clock = ffi.new("bench_timespec")

local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
  return tonumber(clock.tv_sec) * 1000000 + math.floor(tonumber(clock.tv_nsec) / 1000)
end

local function split_tabs(line)
  local fields = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do
    fields[#fields + 1] = field
  end
  return fields
end

local function build(line)
  local fields = split_tabs(line)
  local headers = {}
  for i = 4, #fields do
    local name, value = fields[i]:match("^([^:]+):%s*(.*)$")
    headers[name] = value
  end
  local body = fields[3]
  if body == "" then
    body = nil
  end
  return wrk.format(fields[1], fields[2], headers, body)
end

-- In wrk's main Lua state: give each thread its slice.

local threads = {}
local total_lines = nil

local function count_lines(path)
  local count = 0
  for _ in io.lines(path) do
    count = count + 1
  end
  return count
end

function setup(thread)
  local thread_count = tonumber(os.getenv("BENCH_THREADS"))
  total_lines = total_lines or count_lines(os.getenv("BENCH_REQUESTS"))
  local k = #threads
  thread:set("thread_id", k + 1)
  thread:set("first_line", math.floor(total_lines * k / thread_count) + 1)
  thread:set("last_line", math.floor(total_lines * (k + 1) / thread_count))
  table.insert(threads, thread)
end

-- In each thread's own Lua state (thread_id, first_line and last_line come from setup).

local requests = {}
local next_index = 0
local cycle = false
local stopped = false

function init(args)
  cycle = os.getenv("BENCH_MODE") == "cycle"
  local number = 0
  for line in io.lines(os.getenv("BENCH_REQUESTS")) do
    number = number + 1
    if number > last_line then
      break
    end
    if number >= first_line then
      requests[#requests + 1] = build(line)
    end
  end
  slice_size = #requests
  answered = 0
  sent = 0
  started_us = 0
  last_answer_us = 0
  status_counts = {}
  buckets = {}
end

local function finish()
  if stopped then
    return
  end
  stopped = true
  local marker = io.open(os.getenv("BENCH_DONE_DIR") .. "/thread-" .. thread_id, "w")
  marker:write(tostring(answered))
  marker:close()
  wrk.thread:stop()
end

function request()
  if started_us == 0 then
    started_us = now_us()
  end
  if next_index >= slice_size then
    if cycle and slice_size > 0 then
      next_index = 0
    else
      -- The slice is used up. The thread stops now; what is still in flight is not counted,
      -- and this last request, sent only because wrk must send something, is never read.
      finish()
      return wrk.format("GET", "/")
    end
  end
  next_index = next_index + 1
  sent = sent + 1
  return requests[next_index]
end

function response(status, headers, body)
  answered = answered + 1
  last_answer_us = now_us()
  local bucket = math.floor(last_answer_us / BUCKET_US)
  buckets[bucket] = (buckets[bucket] or 0) + 1
  status_counts[status] = (status_counts[status] or 0) + 1
  if not cycle and answered >= slice_size then
    finish()
  end
end

-- Back in the main state, once every thread has ended.

-- The answers in the whole buckets between the last thread's start and the first thread's end.
local function full_load(window_start, window_end, all_buckets)
  local first_bucket = math.ceil(window_start / BUCKET_US)
  local end_bucket = math.floor(window_end / BUCKET_US)
  local count = 0
  for _, thread_buckets in ipairs(all_buckets) do
    for bucket, n in pairs(thread_buckets) do
      if bucket >= first_bucket and bucket < end_bucket then
        count = count + n
      end
    end
  end
  return count, math.max(end_bucket - first_bucket, 0) * BUCKET_US / 1e6
end

function done(summary, latency, requests_done)
  local first, last, answered_all, sent_all = nil, 0, 0, 0
  local latest_start, earliest_end = 0, nil
  local all_buckets = {}
  local per_thread = {}
  for _, thread in ipairs(threads) do
    local started = thread:get("started_us")
    local finished = thread:get("last_answer_us")
    local count = thread:get("answered")
    answered_all = answered_all + count
    sent_all = sent_all + thread:get("sent")
    if count > 0 then
      first = first and math.min(first, started) or started
      last = math.max(last, finished)
      latest_start = math.max(latest_start, started)
      earliest_end = earliest_end and math.min(earliest_end, finished) or finished
      all_buckets[#all_buckets + 1] = thread:get("buckets")
    end
    local statuses = {}
    for status, n in pairs(thread:get("status_counts")) do
      statuses[#statuses + 1] = string.format('"%d": %d', status, n)
    end
    per_thread[#per_thread + 1] = string.format(
      '{"answered": %d, "slice": %d, "seconds": %.6f, "statuses": {%s}}',
      count, thread:get("slice_size"), (finished - started) / 1e6, table.concat(statuses, ", "))
  end
  local full_answered, full_seconds = full_load(latest_start, earliest_end or 0, all_buckets)
  local errors = summary.errors
  io.write(string.format(
    'BENCH-JSON {"answered": %d, "sent": %d, "seconds": %.6f, "bytes": %d, ' ..
    '"full_load_answered": %d, "full_load_seconds": %.3f, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"threads": [%s]}\n',
    answered_all, sent_all, first and (last - first) / 1e6 or 0, summary.bytes,
    full_answered, full_seconds,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, errors.connect, errors.read, errors.write, errors.status, errors.timeout,
    table.concat(per_thread, ", ")))
end
