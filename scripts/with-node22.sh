#!/usr/bin/env bash
# Runs a command with Node >= 22.18 and the project's node_modules/.bin first on PATH.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$ROOT/scripts/node22.sh"
if ! NODE22_BIN="$(find_node22)"; then
  echo "Node >= ${NODE_MIN} not found: run 'npm run setup' first" >&2; exit 1
fi
export PATH="$ROOT/node_modules/.bin:$(dirname "$NODE22_BIN"):$PATH"
exec "$@"
