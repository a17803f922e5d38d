#!/usr/bin/env bash
# The Claude Desktop bundle (MCPB): bundle/manifest.json and the release binary, validated,
# packed by bundle/pack.sh (as the release workflow packs each platform's), unpacked and run
# the way Claude Desktop runs an installed bundle.
#
#   bash tests/bundle/run.sh        (after `cargo build --release --locked`)
#
# Installs the MCP Bundle tool (@anthropic-ai/mcpb, the exact version package-lock.json
# pins) from npm into target/bundle-tools once. The bundle holds this machine's Linux binary;
# it lands in target/bundle/.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1
cd "$(dirname "$0")/../.."
repo=$PWD
here=$repo/tests/bundle
tools=${BUNDLE_TOOLS:-$repo/target/bundle-tools}
bin=$repo/target/release/procore-token-mcp
say() { printf '== %s\n' "$*"; }
die() { printf 'bundle: %s\n' "$*" >&2; exit 1; }

[ -x "$bin" ] || die "no release binary at $bin: run cargo build --release --locked first"
mkdir -p "$tools"
if ! cmp -s "$here/package-lock.json" "$tools/package-lock.json" || [ ! -x "$tools/node_modules/.bin/mcpb" ]; then
    say "installing @anthropic-ai/mcpb into $tools (npm ci)"
    cp "$here/package.json" "$here/package-lock.json" "$tools/"
    (cd "$tools" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) || die "npm ci failed"
fi
mcpb=$tools/node_modules/.bin/mcpb
say "mcpb $("$mcpb" --version)"

work=$(mktemp -d)
stage=
trap 'rm -rf "$work" ${stage:+"$stage"}' EXIT

say "validating bundle/manifest.json"
"$mcpb" validate "$repo/bundle/manifest.json"

version=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$repo/bundle/manifest.json")
bundle=$repo/target/bundle/procore-token-mcp-$version-linux-x64.mcpb
say "packing $(basename "$bundle") with bundle/pack.sh"
stage=$(bash "$repo/bundle/pack.sh" "$mcpb" linux "$bin" "$bundle" 2>"$work/pack.log") \
    || { cat "$work/pack.log" >&2; die "bundle/pack.sh failed"; }
"$mcpb" info "$bundle" >"$work/info.log" 2>&1 || { cat "$work/info.log" >&2; die "mcpb info failed"; }
printf '   %s: %s bytes\n' "$bundle" "$(stat -c %s "$bundle")"

say "unpacking it as Claude Desktop installs it"
unpacked=$work/installed
"$mcpb" unpack "$bundle" "$unpacked" >"$work/unpack.log" 2>&1 \
    || { cat "$work/unpack.log" >&2; die "mcpb unpack failed"; }
server=$unpacked/server/procore-token-mcp
[ -x "$server" ] || die "the unpacked bundle has no executable server/procore-token-mcp"
cmp -s "$server" "$bin" || die "the unpacked binary is not the release binary"
cmp -s "$unpacked/manifest.json" "$stage/manifest.json" || die "the unpacked manifest is not the staged one"
python3 - "$unpacked/manifest.json" <<'PY' || die "the packed manifest is not for Linux alone"
import json, sys
assert json.load(open(sys.argv[1]))["compatibility"]["platforms"] == ["linux"]
PY

# The command line and environment Claude Desktop starts: the manifest's mcp_config with
# ${__dirname} the install folder and each ${user_config.NAME} the user's value, the field's
# default when the user left it alone, or an empty string.
launch() {
    python3 - "$unpacked" "$@" <<'PY'
import json, sys
folder, given = sys.argv[1], dict(arg.split("=", 1) for arg in sys.argv[2:])
manifest = json.load(open(f"{folder}/manifest.json"))
user = {k: given.get(k, str(v.get("default", ""))) for k, v in manifest["user_config"].items()}
def fill(text):
    text = text.replace("${__dirname}", folder)
    for key, value in user.items():
        text = text.replace("${user_config.%s}" % key, value)
    return text
mcp = manifest["server"]["mcp_config"]
words = ["env", "-i"] + [f"{k}={fill(v)}" for k, v in mcp["env"].items()]
print("\0".join(words + [fill(mcp["command"])] + [fill(a) for a in mcp["args"]]), end="")
PY
}
# The tools the manifest shows the user are the tools the server lists with every field set;
# with none set it lists all but the store's own tools, get_access_token and sign_in.
tools_of() {
    python3 - "$unpacked/manifest.json" "$@" <<'PY'
import json, sys
names = [t["name"] for t in json.load(open(sys.argv[1]))["tools"] if t["name"] not in sys.argv[2:]]
print(",".join(names))
PY
}

say "running it with every field left alone (production, no credentials, no store)"
mapfile -d '' command < <(launch)
python3 "$repo/tests/image/check.py" stdio "--tools=$(tools_of get_access_token sign_in)" "${command[@]}"

say "running it with every field set (held credentials, sandbox, a token store sealed by a key)"
store_key=$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')
mapfile -d '' command < <(launch client_id=bundle-client client_secret=bundle-secret-0000 \
    environment=sandbox "token_store=$work/tokens.json" "store_key=$store_key")
python3 "$repo/tests/image/check.py" stdio "--tools=$(tools_of)" "${command[@]}"

say "bundle test passed"
