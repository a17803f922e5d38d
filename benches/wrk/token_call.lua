-- wrk script: token calls through streamable HTTP sessions, each call a request of its own
-- (a client id no other call uses), so single flight merges none of them.
--
--   wrk -t2 -c64 -d10s -s benches/wrk/token_call.lua http://127.0.0.1:8722/mcp -- SESSION...
--
-- Pass the Mcp-Session-Id of one or more initialized sessions (protocol 2025-06-18) after
-- `--`; benches/wrk/run.sh opens them with curl, and the harness opens its own. Request ids
-- are unique across wrk's threads (a session refuses an id still in flight). Prints the
-- calls whose answer was not a successful tool result.

local threads = {}
local next_thread = 1

function setup(thread)
  thread:set("thread_id", next_thread)
  next_thread = next_thread + 1
  table.insert(threads, thread)
end

local sessions = {}
local calls = 0
failures = 0

function init(args)
  for _, session in ipairs(args) do
    table.insert(sessions, session)
  end
  if #sessions == 0 then
    error("pass at least one Mcp-Session-Id after --")
  end
end

function request()
  calls = calls + 1
  local session = sessions[(calls % #sessions) + 1]
  local body = string.format(
    '{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"get_or_refresh_an_access_token",'
      .. '"arguments":{"grant_type":"client_credentials","client_id":"wrk-%d-%d","client_secret":"wrk-secret"}}}',
    thread_id * 1000000000 + calls, thread_id, calls)
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["Accept"] = "application/json, text/event-stream",
    ["Mcp-Session-Id"] = session,
    ["MCP-Protocol-Version"] = "2025-06-18",
  }, body)
end

function response(status, headers, body)
  if status ~= 200 or not body:find('"isError":false', 1, true) then
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  local failed = 0
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("failures")
  end
  io.write(string.format("wrk: %d calls, %d failed, %.0f calls/s\n", summary.requests, failed,
    summary.requests / (summary.duration / 1e6)))
end
