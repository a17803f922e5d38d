# The client of benches/callgrind/run.sh: PORT CALLS sessions|stateless. One connection,
# CALLS distinct client_credentials calls (a client id each), every answer checked.
import http.client, json, sys
port, calls, era = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
c = http.client.HTTPConnection("127.0.0.1", port)
H = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
def post(body, headers):
    c.request("POST", "/mcp", json.dumps(body), {**H, **headers})
    r = c.getresponse(); data = r.read(); return r, data
extra = {}
if era == "sessions":
    r, _ = post({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "ab", "version": "1"}}}, {})
    extra = {"mcp-session-id": r.getheader("mcp-session-id"), "mcp-protocol-version": "2025-06-18"}
    post({"jsonrpc": "2.0", "method": "notifications/initialized"}, extra)
else:
    extra = {"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "get_or_refresh_an_access_token"}
for i in range(calls):
    p = {"name": "get_or_refresh_an_access_token", "arguments": {"grant_type": "client_credentials", "client_id": f"ab-{i}", "client_secret": "s"}}
    if era != "sessions":
        p["_meta"] = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientInfo": {"name": "ab", "version": "1"}, "io.modelcontextprotocol/clientCapabilities": {}}
    r, data = post({"jsonrpc": "2.0", "id": i + 1, "method": "tools/call", "params": p}, extra)
    assert b"access_token" in data, data[:300]
