# Sourced by setup.sh and with-node22.sh: locate a Node binary new enough for Hardhat 3
# (>= 22.13) and for running our .ts entry points directly (type stripping, >= 22.18).
NODE_MIN="22.18.0"

node_ok() { # $1 = path to a node binary
  [ -x "$1" ] || return 1
  "$1" -e '
    const [a,b,c] = process.versions.node.split(".").map(Number);
    const [x,y,z] = process.argv[1].split(".").map(Number);
    process.exit(a>x||(a===x&&(b>y||(b===y&&c>=z)))?0:1)' "$NODE_MIN" 2>/dev/null
}

find_node22() {
  local root; root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  local candidate
  for candidate in "$root/.tools/node_modules/node/bin/node" "$(command -v node 2>/dev/null || true)"; do
    if [ -n "$candidate" ] && node_ok "$candidate"; then echo "$candidate"; return 0; fi
  done
  return 1
}
