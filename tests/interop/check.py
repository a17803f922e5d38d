"""Judges what a real MCP client got back from procore-token-mcp (standard library only).

  check.py tools FILE [--open] [--store]  the tool list: all four tools (five with a store), the token tool's
                                         input schema, output schema and annotations
  check.py call FILE --emulator URL --client-id ID
                                         the token call: no isError, the emulator's token JSON
                                         as text and as structuredContent, and the emulator
                                         confirms (GET /oauth/token/info) it issued that token
  check.py era FILE --era legacy|modern  the negotiated protocol version
  check.py info FILE --expect own|none   the get_token_info call after the token call: the
                                         caller's own stored pair, or none at all
  check.py challenge URL --issuer ISSUER --resource RESOURCE
                                         URL (an MCP endpoint under --auth-issuer) answers a
                                         request without a token with 401 and a challenge
                                         naming its protected resource metadata, which names
                                         RESOURCE and ISSUER
  check.py signin FILE --emulator URL --client-id ID
                                         sign_in through the client's elicitation: the link
                                         shown by URL, the code asked in a form, a result with
                                         no code or token, then get_access_token's token,
                                         confirmed by the emulator

FILE is a client's JSON: the Inspector CLI's `--format json` output ({"result": …}) or the
interop clients' ({"protocolVersion", "tools", "call"}). Prints one line; exits 1 with the
reason on the first failed check.
"""

import argparse
import json
import sys
import urllib.error
import urllib.request

TOOL = "get_or_refresh_an_access_token"
TOOLS = {"grant_app_authorization", TOOL, "get_token_info", "revoke_token"}
GRANTS = ["authorization_code", "refresh_token", "client_credentials"]
MODERN = "2026-07-28"


class Failed(Exception):
    pass


def expect(condition, message):
    if not condition:
        raise Failed(message)


def load(path):
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle)
    expect(isinstance(document, dict), f"{path}: not a JSON object")
    return document.get("result", document)


def check_tools(document, open_schema, store):
    tools = document.get("tools")
    expect(isinstance(tools, list), "no tools array in the answer")
    names = {tool.get("name") for tool in tools}
    expected = TOOLS | {"get_access_token"} if store else TOOLS
    expect(names == expected, f"tools listed: {sorted(names)}, expected {sorted(expected)}")
    token = next(tool for tool in tools if tool["name"] == TOOL)
    schema = token.get("inputSchema", {})
    properties = schema.get("properties", {})
    expect(schema.get("type") == "object", "token tool: inputSchema is not an object schema")
    expect(
        properties.get("grant_type", {}).get("enum") == GRANTS,
        f"token tool: grant_type enum is {properties.get('grant_type')}",
    )
    for field in ("client_id", "client_secret", "code", "redirect_uri", "refresh_token"):
        expect(
            properties.get(field, {}).get("type") == "string",
            f"token tool: no string property {field}",
        )
    required = schema.get("required", [])
    expect("grant_type" in required, f"token tool: grant_type not required ({required})")
    if open_schema:
        # Started without PROCORE_CLIENT_ID/SECRET: the caller must send the credentials.
        expect(
            required == ["grant_type", "client_id", "client_secret"],
            f"token tool: required is {required}, expected the credential-less form",
        )
    output = token.get("outputSchema", {}).get("properties", {})
    for field in ("access_token", "token_type", "expires_in", "refresh_token"):
        expect(field in output, f"token tool: outputSchema lacks {field}")
    annotations = token.get("annotations", {})
    expect(
        annotations.get("destructiveHint") is True and annotations.get("readOnlyHint") is False,
        f"token tool: annotations {annotations}",
    )
    return f"{len(tools)} tools, token tool schema ok"


def token_info(emulator, access_token):
    request = urllib.request.Request(
        emulator.rstrip("/") + "/oauth/token/info",
        headers={"Authorization": f"Bearer {access_token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, None


def check_call(document, emulator, client_id):
    call = document.get("call", document)
    expect(call.get("isError") is not True, f"the tool returned an error: {call.get('content')}")
    texts = [block.get("text") for block in call.get("content", []) if block.get("type") == "text"]
    expect(texts, "no text content in the tool result")
    try:
        token = json.loads(texts[0])
    except (TypeError, ValueError) as error:
        raise Failed(f"the text content is not the token JSON: {error}") from error
    access_token = token.get("access_token")
    expect(isinstance(access_token, str) and access_token, "no access_token in the token JSON")
    expect(token.get("token_type") == "bearer", f"token_type is {token.get('token_type')!r}")
    expect(isinstance(token.get("expires_in"), int), "no integer expires_in")
    expect("refresh_token" not in token, "client_credentials answered with a refresh_token")
    expect(
        call.get("structuredContent") == token,
        "structuredContent differs from the text content",
    )
    status, info = token_info(emulator, access_token)
    expect(status == 200, f"the emulator does not know the returned token (HTTP {status})")
    uid = (info or {}).get("application", {}).get("uid")
    expect(uid == client_id, f"the token belongs to {uid!r}, not {client_id!r}")
    return "token JSON ok, emulator confirms the token"


def check_era(document, era):
    version = document.get("protocolVersion")
    if era == "modern":
        expect(version == MODERN, f"negotiated {version!r}, expected {MODERN}")
    else:
        expect(
            isinstance(version, str) and version < MODERN,
            f"negotiated {version!r}, expected a handshake-era version",
        )
    return f"protocol {version}"


def check_info(document, own):
    info = document.get("token_info")
    expect(isinstance(info, dict), "no get_token_info result in the answer")
    texts = " ".join(b.get("text", "") for b in info.get("content", []) if b.get("type") == "text")
    if own:
        expect(info.get("isError") is not True, f"get_token_info failed: {texts}")
        return "the caller's own stored pair"
    expect(info.get("isError") is True, f"another principal's pair was visible: {texts}")
    expect("holds no" in texts, f"get_token_info refused for another reason: {texts}")
    return "no pair of another principal visible"


def check_challenge(url, issuer, resource):
    request = urllib.request.Request(
        url,
        data=b'{"jsonrpc":"2.0","id":1,"method":"ping"}',
        headers={"Content-Type": "application/json",
                 "Accept": "application/json, text/event-stream"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raise Failed(f"served without a token (HTTP {response.status})")
    except urllib.error.HTTPError as error:
        expect(error.code == 401, f"HTTP {error.code} without a token, expected 401")
        challenge = error.headers.get("WWW-Authenticate", "")
    expect(challenge.startswith("Bearer "), f"challenge {challenge!r}")
    marker = 'resource_metadata="'
    expect(marker in challenge, f"the challenge names no resource_metadata: {challenge!r}")
    metadata_url = challenge.split(marker, 1)[1].split('"', 1)[0]
    with urllib.request.urlopen(metadata_url, timeout=10) as response:
        metadata = json.load(response)
    expect(metadata.get("resource") == resource, f"metadata resource {metadata.get('resource')!r}")
    expect(
        metadata.get("authorization_servers") == [issuer],
        f"metadata authorization_servers {metadata.get('authorization_servers')!r}",
    )
    return f"401 names {metadata_url}, which names the issuer"


def check_sign_in(document, emulator, client_id):
    names = {tool.get("name") for tool in document.get("tools", [])}
    wanted = TOOLS | {"get_access_token", "sign_in"}
    expect(names == wanted, f"tools listed: {sorted(names)}, expected {sorted(wanted)}")
    asked = document.get("asked")
    expect(asked == ["url", "form-code"], f"the server asked {asked}, not a URL then a form")
    result = document.get("sign_in", {})
    expect(result.get("isError") is not True, f"sign_in failed: {result.get('content')}")
    facts = result.get("structuredContent") or {}
    expect(facts.get("signed_in") is True, f"sign_in answered {facts}")
    expect(facts.get("client_id") == client_id, f"signed in as {facts.get('client_id')!r}")
    expect(isinstance(facts.get("expires_at"), int), "no integer expires_at")
    shown = json.dumps(result)
    code = document.get("code")
    expect(isinstance(code, str) and code, "the user never copied a code")
    expect(code not in shown, "the code is in the sign_in result")
    for secret in ("access_token", "refresh_token"):
        expect(secret not in facts, f"sign_in returned {secret}")
    call = document.get("call", {})
    expect(call.get("isError") is not True, f"get_access_token failed: {call.get('content')}")
    token = call.get("structuredContent") or {}
    access_token = token.get("access_token")
    expect(isinstance(access_token, str) and access_token, "no access_token from get_access_token")
    expect(access_token not in shown, "the access token is in the sign_in result")
    expect(token.get("refreshed") is False, "get_access_token renewed a fresh sign-in")
    status, info = token_info(emulator, access_token)
    expect(status == 200, f"the emulator does not know the stored token (HTTP {status})")
    uid = (info or {}).get("application", {}).get("uid")
    expect(uid == client_id, f"the token belongs to {uid!r}, not {client_id!r}")
    return "signed in through elicitation, no code or token shown, get_access_token works"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["tools", "call", "era", "info", "challenge", "signin"])
    parser.add_argument("file")
    parser.add_argument("--open", action="store_true")
    parser.add_argument("--store", action="store_true", help="the server has a token store")
    parser.add_argument("--expect", choices=["own", "none"])
    parser.add_argument("--issuer")
    parser.add_argument("--resource")
    parser.add_argument("--emulator")
    parser.add_argument("--client-id")
    parser.add_argument("--era", choices=["legacy", "modern"])
    args = parser.parse_args()
    try:
        if args.what == "challenge":
            print(f"ok challenge: {check_challenge(args.file, args.issuer, args.resource)}")
            return 0
        document = load(args.file)
        if args.what == "tools":
            verdict = check_tools(document, args.open, args.store)
        elif args.what == "info":
            verdict = check_info(document, args.expect == "own")
        elif args.what == "call":
            verdict = check_call(document, args.emulator, args.client_id)
        elif args.what == "signin":
            verdict = check_sign_in(document, args.emulator, args.client_id)
        else:
            verdict = check_era(document, args.era)
    except (Failed, OSError, ValueError) as error:
        print(f"FAIL {args.what}: {error}")
        return 1
    print(f"ok {args.what}: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
