#!/bin/sh
# The operator commands' runner (bin/cdc-*): runs a TypeScript entry of the project with its tsx on
# Node.js 24 — the project's own (.tools/node, infra/dev/node.sh) first, else the first on PATH — and
# refuses any older node, naming it. Under Node 20 an entry's `if (import.meta.main)` is false (the
# property is Node 24's): bin/cdc-migrate then exited 0 having applied nothing, an upgrade told it was
# done. Usage: infra/cli/run.sh <entry.ts> [args…] (docs/deploy.md "Upgrade").
set -e
root=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
PATH="$root/.tools/node/bin:$PATH"
export PATH
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -lt 24 ]; then
  echo "$(basename "$1" .ts): needs Node.js 24 or later; found $(node --version 2>/dev/null || echo 'no node') at $(command -v node || echo 'nowhere on PATH') — run 'bash infra/dev/node.sh' in $root (it installs Node.js 24 into .tools/node) or put Node.js 24 first on PATH" >&2
  exit 1
fi
entry=$1
shift
exec "$root/node_modules/.bin/tsx" "$root/$entry" "$@"
