"""A peer for the performance harness: the same token tool on the official MCP Python SDK
(`pip install mcp==2.3.0`), written the way its documentation shows, forwarding the body to
the login host with httpx2 (the HTTP client the SDK itself uses) and returning the token JSON.

  python python_sdk_server.py LOGIN_URL stdio
  python python_sdk_server.py LOGIN_URL http PORT      (streamable HTTP at /mcp)
"""

import sys

import httpx2
from mcp.server.mcpserver import MCPServer

login_url = sys.argv[1].rstrip("/")
server = MCPServer("python-sdk-token-peer")
upstream = httpx2.AsyncClient(timeout=30)


@server.tool()
async def get_or_refresh_an_access_token(
    grant_type: str,
    client_id: str,
    client_secret: str | None = None,
    code: str | None = None,
    redirect_uri: str | None = None,
    refresh_token: str | None = None,
) -> dict:
    """Forward a token request to the login host's /oauth/token and return its JSON."""
    body = {"grant_type": grant_type, "client_id": client_id, "client_secret": client_secret,
            "code": code, "redirect_uri": redirect_uri, "refresh_token": refresh_token}
    response = await upstream.post(f"{login_url}/oauth/token",
                                   json={k: v for k, v in body.items() if v is not None})
    response.raise_for_status()
    return response.json()


if sys.argv[2] == "stdio":
    server.run()
else:
    server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[3]))
