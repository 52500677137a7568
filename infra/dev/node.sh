#!/usr/bin/env bash
# Node.js 24 LTS for make and .ci/run (Node 20 has reached end of life; package.json engines >=24).
# If the node first on PATH is older than 24, installs the official binary that the npm registry's
# node-linux-<arch> package carries into .tools/node (gitignored) and links .tools/node/bin/node.
# Callers put .tools/node/bin first on PATH (the Makefile exports it; .ci/run too). Idempotent,
# quiet when nothing is to do. README.md §Quick start.
set -euo pipefail
cd "$(dirname "$0")/../.."

NODE_VERSION=24.22.3
MIN_MAJOR=24
TOOLS=.tools/node
PATH="$PWD/$TOOLS/bin:$PATH"

major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
# The algorithms the front uses must be in the node's OpenSSL too (docs/runtime.md "Node.js and its
# OpenSSL"): a node 24 linked against a system OpenSSL 3.0 has no SM4-GCM.
has_sm() { "$1" -e 'const c = require("crypto"); process.exit(["sm4-cbc", "sm4-gcm", "sm4-ctr"].every((x) => c.getCiphers().includes(x)) && c.getHashes().includes("sm3") ? 0 : 1)' 2>/dev/null; }

if command -v node >/dev/null && [ "$(major node)" -ge "$MIN_MAJOR" ] && has_sm node; then
  exit 0
fi

case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "node.sh: no node-linux package for $(uname -m); install Node.js >= $MIN_MAJOR by hand" >&2; exit 1 ;;
esac
command -v npm >/dev/null || { echo "node.sh: npm is needed to install Node.js $NODE_VERSION (apt-get install -y npm)" >&2; exit 1; }

echo "node.sh: $(command -v node >/dev/null && node --version || echo 'no node') is older than $MIN_MAJOR or lacks SM4-GCM; installing Node.js $NODE_VERSION into $TOOLS"
npm install --prefix "$TOOLS" --no-save --no-audit --no-fund --loglevel=error "node-linux-$arch@$NODE_VERSION"
mkdir -p "$TOOLS/bin"
ln -sfn "../node_modules/node-linux-$arch/bin/node" "$TOOLS/bin/node"
found="$(major "$TOOLS/bin/node")"
if [ "$found" -lt "$MIN_MAJOR" ] || ! has_sm "$TOOLS/bin/node"; then
  echo "node.sh: $TOOLS/bin/node does not run as Node.js >= $MIN_MAJOR with SM4-GCM" >&2
  exit 1
fi
echo "node.sh: $("$TOOLS/bin/node" --version) in $TOOLS/bin"
