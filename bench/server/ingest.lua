-- wrk script: every request is a new, realistic scan report (one finding, no image), each with
-- its own report and scan id, so the server does the full ingest (validate, match declaration,
-- score, insert, commit) rather than answering "duplicate".
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("id", thread_id)
  thread_id = thread_id + 1
  table.insert(threads, thread)
end

function init(args)
  token = os.getenv("BAYLENS_BENCH_TOKEN")
  prefix = os.getenv("BAYLENS_BENCH_PREFIX") or "b"
  now = os.date("!%Y-%m-%dT%H:%M:%SZ")
end

request = function()
  counter = counter + 1
  local n = string.format("%s-%d-%d", prefix, id, counter)
  local body = string.format(
    '{"contract":"baylens.report/1","report_id":"r-%s","scan_id":"BAY01-%s","bay":"BAY01",' ..
    '"captured_at":"%s","analysed_at":"%s","container_code":"CSQU3054383","width":416,"height":208,' ..
    '"model":{"name":"concealment-v1","sha256":"4e9d9c38140c3ec0c102034c1543b33ef95b45e0917716d50220dd96fbbd65be",' ..
    '"max_probability":0.93,"flagged_fraction":0.012,"inference_ms":16.4},' ..
    '"findings":[{"kind":"concealed_object","score":0.93,"region":{"x":88,"y":61,"width":31,"height":30},' ..
    '"message":"Dense object of about 0.5 m x 0.5 m hidden in the cargo, 1.4 m from the left edge of the scan and 1.0 m from its top: examine there."}],' ..
    '"risk":0.93,"lane":"red"}', n, n, now, now)
  return wrk.format("POST", "/api/v1/reports",
    { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }, body)
end

response = function(status, headers, body)
  if status ~= 201 then
    io.stderr:write("unexpected status " .. status .. ": " .. body .. "\n")
  end
end
