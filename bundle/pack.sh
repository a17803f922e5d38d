#!/usr/bin/env bash
# Packs one platform's Claude Desktop bundle (.mcpb) from bundle/manifest.json and a built
# binary. Used by tests/bundle/run.sh (the Linux binary, in CI) and by the release workflow
# (every platform's binary).
#
#   bash bundle/pack.sh MCPB PLATFORM BINARY OUT.mcpb
#
# MCPB: the mcpb command (@anthropic-ai/mcpb); PLATFORM: linux, darwin or win32, which the
# staged manifest's compatibility names alone; BINARY: that platform's procore-token-mcp
# (procore-token-mcp.exe for win32). Prints the staged folder's path on stdout.
set -euo pipefail
[ $# = 4 ] || { echo "usage: bash bundle/pack.sh MCPB PLATFORM BINARY OUT.mcpb" >&2; exit 2; }
mcpb=$1 platform=$2 binary=$3 bundle=$4
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
case $platform in
    linux | darwin) exe=procore-token-mcp ;;
    win32) exe=procore-token-mcp.exe ;;
    *) echo "bundle/pack.sh: unknown platform '$platform' (linux, darwin or win32)" >&2; exit 2 ;;
esac
[ -f "$binary" ] || { echo "bundle/pack.sh: no binary at $binary" >&2; exit 1; }

stage=$(mktemp -d "${TMPDIR:-/tmp}/procore-token-mcp-bundle.XXXXXX")
mkdir -p "$stage/server"
# The repository's manifest, for the one platform whose binary this bundle carries.
python3 - "$here/manifest.json" "$stage/manifest.json" "$platform" "server/$exe" <<'PY'
import json, sys
source, target, platform, entry_point = sys.argv[1:]
manifest = json.load(open(source))
manifest["compatibility"]["platforms"] = [platform]
manifest["server"]["entry_point"] = entry_point
json.dump(manifest, open(target, "w"), indent=2)
PY
cp "$binary" "$stage/server/$exe"
chmod 755 "$stage/server/$exe"
cp "$here/../LICENSE" "$stage/LICENSE"

"$mcpb" validate "$stage/manifest.json" >&2
mkdir -p "$(dirname "$bundle")"
rm -f "$bundle"
"$mcpb" pack "$stage" "$bundle" >&2
[ -s "$bundle" ] || { echo "bundle/pack.sh: mcpb pack made no bundle" >&2; exit 1; }
echo "$stage"
