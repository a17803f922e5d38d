"""Checks for tests/image/run.sh, on the image buildah built.

  check.py config INSPECT_JSON      the label, the non-root user, the entrypoint, no default
                                    arguments
  check.py stdio [--tools=A,B] COMMAND...
                                    the command (the image's entrypoint under `buildah run`)
                                    answers initialize and tools/list over stdio, listing
                                    the four tools of a server without a store (or A,B…)
  check.py http PORT COMMAND...     the command serves streamable HTTP on 127.0.0.1:PORT
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

NAME = "io.github.procore-token-mcp/procore-token-mcp"
ENTRYPOINT = ["/usr/local/bin/procore-token-mcp"]
TOOLS = {"grant_app_authorization", "get_token_info", "get_or_refresh_an_access_token", "revoke_token"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "image-check", "version": "0"},
    },
}


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def config(inspect_json):
    image = json.loads(inspect_json)
    docker = image.get("Docker", {}).get("config", {})
    oci = image.get("OCIv1", {}).get("config", {})
    labels = oci.get("Labels") or docker.get("Labels") or {}
    if labels.get("io.modelcontextprotocol.server.name") != NAME:
        fail(f"label io.modelcontextprotocol.server.name: {labels}")
    user = oci.get("User", "")
    if user.split(":")[0] in ("", "root", "0"):
        fail(f"the image runs as root: User={user!r}")
    if oci.get("Entrypoint") != ENTRYPOINT:
        fail(f"entrypoint: {oci.get('Entrypoint')}")
    if oci.get("Cmd"):
        fail(f"default arguments: {oci.get('Cmd')}")
    print(f"   label {NAME}, user {user}, entrypoint {ENTRYPOINT}, no default arguments")


def tool_names(result):
    return {tool["name"] for tool in result.get("tools", [])}


def stdio(command, expected=TOOLS):
    child = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:

        def send(message):
            child.stdin.write(json.dumps(message) + "\n")
            child.stdin.flush()

        def answer(request_id):
            # readline blocks until the server answers or exits; run.sh's CI job has its own
            # timeout, and an exit ends the read with "".
            for line in child.stdout:
                message = json.loads(line)
                if message.get("id") == request_id:
                    return message
            fail(f"the server exited (status {child.wait()}) before answering request {request_id}")

        send(INITIALIZE)
        init = answer(1)
        if "result" not in init:
            fail(f"initialize: {init}")
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        names = tool_names(answer(2).get("result", {}))
        if names != expected:
            fail(f"tools/list over stdio: {sorted(names)}, expected {sorted(expected)}")
        print(f"   stdio: {init['result']['serverInfo']['name']} lists {sorted(names)}")
        child.stdin.close()
        status = child.wait(timeout=30)
        if status != 0:
            fail(f"the server exited with status {status} at the end of stdin")
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)


def post(port, body, session=None):
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
    }
    if session:
        headers["Mcp-Session-Id"] = session
        headers["MCP-Protocol-Version"] = "2025-06-18"
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/mcp", data=json.dumps(body).encode(), headers=headers
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
        session = response.headers.get("Mcp-Session-Id", session)
    if response.headers.get("Content-Type", "").startswith("text/event-stream"):
        data = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
        text = next(d for d in data if d)
    return (json.loads(text) if text.strip() else None), session


def http(port, command):
    # The server's log (and buildah's report of the stop) is shown only when a check fails.
    log = tempfile.TemporaryFile(mode="w+")
    child = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stderr=log, start_new_session=True
    )
    passed = False
    try:
        deadline = time.monotonic() + 60
        while True:
            if child.poll() is not None:
                fail(f"the HTTP server exited with status {child.returncode}")
            try:
                init, session = post(port, INITIALIZE)
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    fail(f"nothing answered on 127.0.0.1:{port} within 60 s")
                time.sleep(0.2)
        if "result" not in init or not session:
            fail(f"initialize over HTTP: {init}, session {session!r}")
        post(port, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session)
        listed, _ = post(port, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, session)
        names = tool_names(listed.get("result", {}))
        if names != TOOLS:
            fail(f"tools/list over HTTP: {sorted(names)}")
        print(f"   http: 127.0.0.1:{port}/mcp lists {sorted(names)}")
        passed = True
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
        if not passed:
            log.seek(0)
            sys.stderr.write(log.read())
        log.close()


def main():
    mode, rest = sys.argv[1], sys.argv[2:]
    if mode == "config":
        config(rest[0])
    elif mode == "stdio":
        if rest[0].startswith("--tools="):
            stdio(rest[1:], set(rest[0].removeprefix("--tools=").split(",")))
        else:
            stdio(rest)
    elif mode == "http":
        http(int(rest[0]), rest[1:])
    else:
        fail(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
