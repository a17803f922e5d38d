"""One interop case with the official MCP Python SDK client (mcp 2.x).

Connects to procore-token-mcp over one transport in one protocol era, lists the tools,
calls get_or_refresh_an_access_token with grant_type=client_credentials, and writes what
came back (negotiated protocol version, tool list, call result) as JSON for check.py.
With --sign-in (a server holding credentials and a store), it calls sign_in instead, its
elicitation callback playing the user: it opens the sign-in link the server shows, copies
the code from the emulator's page and enters it in the server's form; then it calls
get_access_token. It asserts nothing itself: check.py judges the answer, the same way for
every client.
"""

import argparse
import asyncio
import json
import re
import sys
import urllib.request

import mcp.types as types
from mcp import Client, StdioServerParameters
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

TOOL = "get_or_refresh_an_access_token"


def dump(model):
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


class User:
    """The person at the client: opens the link shown, pastes the code Procore's page shows."""

    def __init__(self):
        self.asked = []
        self.code = None

    def open(self, link):
        # The browser follows the emulator's redirect to /oauth/authorize/<CODE>.
        with urllib.request.urlopen(link, timeout=30) as response:
            final = response.geturl()
        match = re.search(r"/oauth/authorize/([^/?#]+)$", final)
        if match is None:
            raise RuntimeError(f"the sign-in link ended at {final}, not at a code page")
        self.code = match.group(1)

    async def __call__(self, context, params):
        if isinstance(params, types.ElicitRequestURLParams):
            self.asked.append("url")
            self.open(params.url)
            return types.ElicitResult(action="accept")
        properties = params.requested_schema.get("properties", {})
        if "code" not in properties:
            self.asked.append("form-link")
            self.open(re.search(r"https?://\S+/oauth/authorize\?\S+", params.message).group(0))
            return types.ElicitResult(action="accept")
        self.asked.append("form-code")
        return types.ElicitResult(action="accept", content={"code": self.code})


async def sign_in(server, mode):
    user = User()
    async with Client(
        server, mode=mode, read_timeout_seconds=30, elicitation_callback=user
    ) as client:
        tools = await client.list_tools()
        signed_in = await client.call_tool("sign_in", {})
        token = await client.call_tool("get_access_token", {})
        return {
            "client": "mcp (Python SDK)",
            "protocolVersion": client.protocol_version,
            "tools": dump(tools)["tools"],
            "asked": user.asked,
            "code": user.code,
            "sign_in": dump(signed_in),
            "call": dump(token),
        }


async def run(args):
    if args.transport == "stdio":
        # With --sign-in the server holds the app's credentials (the SDK passes a child only
        # a few safe variables of its own environment, plus these).
        held = {"PROCORE_CLIENT_ID": args.client_id, "PROCORE_CLIENT_SECRET": args.client_secret}
        server = StdioServerParameters(
            command=args.server, args=args.server_args, env=held if args.sign_in else None
        )
    elif args.transport == "http":
        server = args.server
    else:
        server = sse_client(args.server)
    if args.bearer:
        # An access token from the OpenID provider: the server is an OAuth resource server.
        headers = {"Authorization": f"Bearer {args.bearer}"}
        if args.transport == "http":
            http = create_mcp_http_client(headers=headers)
            server = streamable_http_client(args.server, http_client=http)
        else:
            server = sse_client(args.server, headers=headers)
    # "auto" probes server/discover and lands on 2026-07-28 when the server offers it;
    # check.py then insists that it did.
    mode = "legacy" if args.era == "legacy" else "auto"
    if args.sign_in:
        return await sign_in(server, mode)
    async with Client(server, mode=mode, read_timeout_seconds=30) as client:
        tools = await client.list_tools()
        result = {
            "client": "mcp (Python SDK)",
            "protocolVersion": client.protocol_version,
            "tools": dump(tools)["tools"],
        }
        if not args.info_only:
            call = await client.call_tool(
                TOOL,
                {
                    "grant_type": "client_credentials",
                    "client_id": args.client_id,
                    "client_secret": args.client_secret,
                },
            )
            result["call"] = dump(call)
        if args.token_info or args.info_only:
            # The caller's own stored pair (the call above stored it), or none.
            info = await client.call_tool("get_token_info", {"client_id": args.client_id})
            result["token_info"] = dump(info)
        return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--transport", choices=["stdio", "http", "sse"], required=True)
    parser.add_argument("--era", choices=["legacy", "modern"], required=True)
    parser.add_argument("--server", required=True, help="binary (stdio) or URL")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--bearer", help="an access token for the server (HTTP and SSE)")
    parser.add_argument("--token-info", action="store_true",
                        help="then check the stored token with get_token_info")
    parser.add_argument("--info-only", action="store_true",
                        help="no token call: only get_token_info for --client-id")
    parser.add_argument("--sign-in", action="store_true", help="call sign_in, then get_access_token")
    parser.add_argument("server_args", nargs="*", help="arguments for the stdio binary")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    with open(args.out, "w", encoding="utf-8") as out:
        json.dump(result, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
