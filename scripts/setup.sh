#!/usr/bin/env bash
# Idempotent provisioning for `npm start`, `npm test` and CI.
# Installs only what is missing: Node >= 22.18 (from the npm package `node@22` when the
# machine's Node is older), the npm dependencies, the root's and the indexer's own (installed
# *under* Node 22, so npm does not skip Hardhat's EDR platform package, whose engines require
# Node 22), and Redis from Debian's packages (the verifier's queues). When everything is in
# place it returns in well under a second.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/node22.sh
source "$ROOT/scripts/node22.sh"

log() { printf '[setup] %s\n' "$*" >&2; }

# --- 1. Node 22 -------------------------------------------------------------------------
if ! NODE22_BIN="$(find_node22)"; then
  log "Node $(node --version 2>/dev/null || echo none) is older than ${NODE_MIN}; installing the npm package node@22 into .tools/"
  mkdir -p .tools
  [ -f .tools/package.json ] || echo '{"name":"tideway-tools","private":true}' > .tools/package.json
  npm install --prefix .tools --no-audit --no-fund --loglevel=error node@22 >&2
  NODE22_BIN="$(find_node22)" || { log "node@22 installed but no usable binary in .tools/node_modules/node/bin (did its preinstall script run?)"; exit 1; }
fi
export PATH="$(dirname "$NODE22_BIN"):$PATH"

# --- 2. npm dependencies ------------------------------------------------------------------
stamp_file="node_modules/.tideway-install-stamp"
want_stamp="$(cat package.json package-lock.json 2>/dev/null | sha256sum | cut -c1-64) $("$NODE22_BIN" --version)"
if [ ! -f "$stamp_file" ] || [ "$(cat "$stamp_file")" != "$want_stamp" ]; then
  log "installing npm dependencies with Node $("$NODE22_BIN" --version)"
  if [ -f package-lock.json ]; then
    # Not `npm ci`: the registry reachable here lacks the other platforms' optional EDR
    # packages, so npm ci rejects any lockfile (it wants them listed). `npm install --no-save`
    # still installs exactly the locked versions and leaves the lockfile untouched.
    npm install --no-save --no-audit --no-fund --loglevel=error >&2
  else
    npm install --no-audit --no-fund --loglevel=error >&2
  fi
  # Hardhat runs on EDR, whose native build ships as an optional platform package.
  # Check that it really landed instead of trusting npm's silence (see ../shared/DESIGN.md, "Toolchain facts").
  if ! "$NODE22_BIN" -e "require.resolve('@nomicfoundation/edr')" >/dev/null 2>&1 ||
     ! "$NODE22_BIN" -e "require('@nomicfoundation/edr')" >/dev/null 2>&1; then
    log "EDR native package missing after install; installing it explicitly"
    edr_version="$("$NODE22_BIN" -p "require('@nomicfoundation/edr/package.json').version")"
    npm install --no-save --no-audit --no-fund --loglevel=error "@nomicfoundation/edr-linux-x64-gnu@${edr_version}" >&2
  fi
  # The edge's native addons ship prebuilt binaries inside their npm packages (no install
  # script needs to run): check that they load rather than failing on the first request.
  for addon in secp256k1/bindings.js lmdb; do
    if ! "$NODE22_BIN" -e "require('$addon')" >/dev/null 2>&1; then
      log "the native addon '$addon' does not load on this machine ($(uname -sm)); the edge needs it: try 'npm rebuild ${addon%%/*}'"
      exit 1
    fi
  done
  want_stamp="$(cat package.json package-lock.json 2>/dev/null | sha256sum | cut -c1-64) $("$NODE22_BIN" --version)"
  echo "$want_stamp" > "$stamp_file"
fi

# --- 3. the indexer's own npm dependencies (Ponder and what it pulls: vite, graphql, PGlite) -----
# Kept in indexer/node_modules, out of the services' tree; the same stamp check as above.
indexer_stamp="indexer/node_modules/.tideway-install-stamp"
want_indexer="$(cat indexer/package.json indexer/package-lock.json 2>/dev/null | sha256sum | cut -c1-64) $("$NODE22_BIN" --version)"
if [ ! -f "$indexer_stamp" ] || [ "$(cat "$indexer_stamp")" != "$want_indexer" ]; then
  log "installing the indexer's npm dependencies (indexer/node_modules)"
  (cd indexer && npm install --no-save --no-audit --no-fund --loglevel=error >&2)
  echo "$want_indexer" > "$indexer_stamp"
fi

# --- 4. Redis (the verifier queues every unit of work in it; tests start their own servers) ---
if ! command -v redis-server >/dev/null 2>&1; then
  log "installing redis-server from Debian's packages"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >&2
fi
exit 0
