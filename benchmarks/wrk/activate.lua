-- wrk script: POST /v1/activate with a fresh CMID (UUID) and nonce in every request.
--
--   wrk -t1 -c64 -d10s --latency -s benchmarks/wrk/activate.lua http://127.0.0.1:PORT \
--       -- PRODUCT GVLK SEED
--
-- Every request is a new client, so with threshold 1 every request is a write and a signature.
-- A CMID is random (UUID version 4 layout) except for its last 8 hex digits, a counter of this
-- wrk thread, so CMIDs never repeat within a run; SEED (different for every wrk process in a
-- run) keeps processes and threads apart. The nonce is 24 random bytes in base64url (32
-- characters), the fingerprint the CMID's 32 hex digits, client_time wrk's clock.
--
-- When wrk finishes, done() prints one line "VOLACT_WRK {json}" with the counts and latency
-- percentiles (in microseconds) for the runner to read.

local product = "writer-2026"
local key = ""
local counter = 0
-- A global, so that setup() can number each thread (thread:set sets globals).
stream = 0
local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local headers = { ["Content-Type"] = "application/json" }
local threads = {}
local random = math.random
local format = string.format

function setup(thread)
  thread:set("stream", #threads)
  table.insert(threads, thread)
end

function init(args)
  product = args[1] or product
  key = args[2] or key
  local seed = tonumber(args[3] or "1")
  stream = (seed * 16 + stream) % 65536
  math.randomseed(seed * 7919 + stream * 104729 + os.time())
end

local function nonce()
  local chars = {}
  for i = 1, 32 do
    local n = random(1, 64)
    chars[i] = alphabet:sub(n, n)
  end
  return table.concat(chars)
end

function request()
  counter = counter + 1
  local cmid = format(
    "%04x%04x-%04x-4%03x-%04x-%04x%08x",
    random(0, 0xffff), random(0, 0xffff), random(0, 0xffff), random(0, 0xfff),
    0x8000 + random(0, 0x3fff), stream, counter
  )
  local body = format(
    '{"v":1,"product":"%s","key":"%s","cmid":"%s","fingerprint":"%s",'
      .. '"machine":"bench-%s","client_time":%d,"nonce":"%s","state":"oob_grace"}',
    product, key, cmid, (cmid:gsub("-", "")), cmid:sub(1, 8), os.time(), nonce()
  )
  return wrk.format("POST", nil, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(format(
    'VOLACT_WRK {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)
  ))
end
