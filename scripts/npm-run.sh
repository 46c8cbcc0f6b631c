#!/usr/bin/env bash
# What the npm scripts run: provision (scripts/setup.sh), then *replace* this shell with the
# command under Node 22. The exec chain (npm's sh -> this bash -> with-node22.sh -> node) leaves
# no shell in between that would swallow npm's SIGTERM, so `npm start` stops its node cleanly.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
exec bash "$ROOT/scripts/with-node22.sh" "$@"
