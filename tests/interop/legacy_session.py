"""One legacy streamable-HTTP session (protocol 2025-11-25) driven by hand, a request at a
time, so the interop suite can restart a replica between requests (standard library only).

  legacy_session.py open URL              initialize + notifications/initialized; prints
                                          the session id
  legacy_session.py list URL ID OUT       tools/list in session ID; writes {"tools": …} to
                                          OUT (for check.py tools)

Exits 1 with the reason on any HTTP status other than the expected one.
"""

import json
import sys
import urllib.error
import urllib.request

VERSION = "2025-11-25"


def post(url, body, session=None):
    headers = {
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": VERSION,
    }
    if session:
        headers["mcp-session-id"] = session
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode(errors="replace")


def messages(headers, text):
    if (headers.get("content-type") or "").startswith("text/event-stream"):
        data = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
        return [json.loads(item) for item in data if item]
    return [json.loads(text)] if text.strip() else []


def main():
    what, url = sys.argv[1], sys.argv[2]
    if what == "open":
        initialize = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": VERSION, "capabilities": {},
            "clientInfo": {"name": "interop-legacy-session", "version": "1"}}}
        status, headers, text = post(url, initialize)
        if status != 200 or not headers.get("mcp-session-id"):
            sys.exit(f"initialize: HTTP {status}, no session id: {text[:200]}")
        session = headers["mcp-session-id"]
        status, _, text = post(url, {"jsonrpc": "2.0", "method": "notifications/initialized"},
                               session)
        if status != 202:
            sys.exit(f"notifications/initialized: HTTP {status}: {text[:200]}")
        print(session)
        return 0
    session, out = sys.argv[3], sys.argv[4]
    status, headers, text = post(url, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                 session)
    if status != 200:
        sys.exit(f"tools/list: HTTP {status}: {text[:200]}")
    answer = next((m for m in messages(headers, text) if m.get("id") == 1), None)
    if not answer or "result" not in answer:
        sys.exit(f"tools/list: no result in {text[:200]}")
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(answer["result"], handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
