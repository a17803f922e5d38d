#!/usr/bin/env bash
# The load figure with a standard tool: opens SESSIONS streamable HTTP sessions on a running
# server with curl, then runs wrk with benches/wrk/token_call.lua (a distinct request per
# call) against them.
#
#   bash benches/wrk/run.sh http://127.0.0.1:8722/mcp [CONNECTIONS] [SECONDS] [SESSIONS]
#
# Start the server with an upstream that answers client-credentials requests for any client
# id (the harness's own upstream does; `cargo bench --bench harness` runs this same script
# logic itself and prints both figures). Needs wrk (Debian: wrk) and curl.
set -euo pipefail
url=${1:?usage: run.sh MCP_URL [CONNECTIONS] [SECONDS] [SESSIONS]}
connections=${2:-64} seconds=${3:-10} count=${4:-4}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
sessions=()
for _ in $(seq "$count"); do
    id=$(curl -s -D - -o /dev/null "$url" -H 'content-type: application/json' \
        -H 'accept: application/json, text/event-stream' \
        -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"wrk","version":"1"}}}' \
        | tr -d '\r' | sed -n 's/^mcp-session-id: //Ip')
    [ -n "$id" ] || { echo "no session id from $url" >&2; exit 1; }
    curl -s -o /dev/null "$url" -H 'content-type: application/json' \
        -H 'accept: application/json, text/event-stream' -H "mcp-session-id: $id" \
        -H 'mcp-protocol-version: 2025-06-18' -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
    sessions+=("$id")
done
wrk -t2 -c"$connections" -d"${seconds}s" -s "$here/token_call.lua" "$url" -- "${sessions[@]}"
