#!/usr/bin/env bash
# Instructions per token call, counted by callgrind (valgrind, Debian's package): immune to
# the noise of a shared machine, so an A/B of two builds can be read from one run of each.
#
#   bash benches/callgrind/run.sh BINARY [sessions|stateless] [CALLS]
#
# Starts a tiny upstream (upstream.py: every token POST answered at once), the server under
# callgrind over streamable HTTP, and a client (client.py) that sends CALLS distinct
# client_credentials calls (each its own client id) over one connection; then again with
# 200 calls, and prints the difference per call, which leaves start-up and shutdown out.
set -euo pipefail
bin=$1 era=${2:-sessions} calls=${3:-1200}
here=$(cd "$(dirname "$0")" && pwd)
command -v valgrind >/dev/null || { echo "valgrind is not installed (Debian: valgrind)" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Total instructions of one server run with $1 calls.
instructions() {
    local n=$1 up port out upid vpid
    up=$(free_port); port=$(free_port); out=$(mktemp -d)
    python3 "$here/upstream.py" "$up" & upid=$!
    RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$bin" \
        --transport http --listen "127.0.0.1:$port" --login-url "http://127.0.0.1:$up" \
        2>/dev/null & vpid=$!
    for _ in $(seq 200); do
        curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break
        sleep 0.1
    done
    python3 "$here/client.py" "$port" "$n" "$era"
    kill -INT "$vpid"; wait "$vpid" || true
    kill "$upid"; wait "$upid" 2>/dev/null || true
    awk '/^(summary|totals):/ {print $2; exit}' "$out/cg"
    rm -rf "$out"
}

small=$(instructions 200)
large=$(instructions "$calls")
echo "$bin $era: $(( (large - small) / (calls - 200) )) instructions per call"
