-- wrk script for bench/payments.py: POST /v1/payments with confirm=true, the success card
-- and a fresh Idempotency-Key per request.
--
-- Usage: wrk ... -s bench/payments.lua <url> -- <run id> <secret key>
-- The run id makes keys unique across runs against the same database; each thread adds its
-- own number and a per-thread counter. done() prints one "bench_result" line that
-- bench/payments.py parses (latencies in microseconds).

local body = '{"amount": 2000, "currency": "USD", "confirm": true, '
  .. '"payment_method_data": {"type": "card", "card": {"number": "4242424242424242", '
  .. '"exp_month": 12, "exp_year": 2034, "cvc": "123"}}}'

local threads = {}
local next_thread_id = 1

function setup(thread)
  thread:set("thread_id", next_thread_id)
  next_thread_id = next_thread_id + 1
  table.insert(threads, thread)
end

local counter = 0
local key_prefix
local headers

function init(args)
  local run_id = args[1] or "run"
  local secret_key = args[2] or ""
  key_prefix = "bench-" .. run_id .. "-" .. thread_id .. "-"
  headers = {
    ["Authorization"] = "Bearer " .. secret_key,
    ["Content-Type"] = "application/json",
  }
  -- Read back by done() through thread:get().
  non_2xx = 0
  not_succeeded = 0
  responses = 0
end

function request()
  counter = counter + 1
  headers["Idempotency-Key"] = key_prefix .. counter
  return wrk.format("POST", nil, headers, body)
end

function response(status, _, response_body)
  responses = responses + 1
  if status < 200 or status > 299 then
    non_2xx = non_2xx + 1
  elseif not string.find(response_body, '"status":"succeeded"', 1, true) then
    not_succeeded = not_succeeded + 1
  end
end

function done(summary, latency, _)
  local total_non_2xx, total_not_succeeded, total_responses = 0, 0, 0
  for _, thread in ipairs(threads) do
    total_non_2xx = total_non_2xx + thread:get("non_2xx")
    total_not_succeeded = total_not_succeeded + thread:get("not_succeeded")
    total_responses = total_responses + thread:get("responses")
  end
  local errors = summary.errors
  io.write(string.format(
    "bench_result requests=%d duration_us=%d responses=%d non_2xx=%d not_succeeded=%d"
      .. " connect_errors=%d read_errors=%d write_errors=%d timeouts=%d"
      .. " p50_us=%.1f p75_us=%.1f p90_us=%.1f p95_us=%.1f p99_us=%.1f max_us=%.1f mean_us=%.1f\n",
    summary.requests, summary.duration, total_responses, total_non_2xx, total_not_succeeded,
    errors.connect, errors.read, errors.write, errors.timeout,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(95), latency:percentile(99), latency.max, latency.mean
  ))
end
