#!/usr/bin/env bash
# The npm packages, exactly as locked: the JavaScript client's (clients/js: @msgpack/msgpack,
# which the demo page also loads), the browser tests' (tests/browser: playwright-core) and the
# reference tests' (tests/reference: ot-text-unicode, ws, @msgpack/msgpack).
#   bash scripts/js-deps.sh            all of them (scripts/test.sh)
#   bash scripts/js-deps.sh --runtime  only what the demo page needs (scripts/start.sh)
# Skips a directory whose node_modules was installed from the same package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."

runtime=false
[ "${1:-}" = "--runtime" ] && runtime=true

install() { # install <dir> <mode: all|runtime>
  local dir="$1" mode="$2" stamp="$1/node_modules/.troupe-installed"
  # A full install serves the runtime too.
  for have in all "$mode"; do
    if [ -f "$stamp.$have" ] && cmp -s "$dir/package-lock.json" "$stamp.$have"; then
      return 0
    fi
  done
  local args=(ci --no-audit --no-fund --loglevel=error)
  [ "$mode" = runtime ] && args+=(--omit=dev)
  echo "npm ${args[*]} in $dir"
  (cd "$dir" && npm "${args[@]}")
  rm -f "$stamp".*
  cp "$dir/package-lock.json" "$stamp.$mode"
}

if $runtime; then
  install clients/js runtime
else
  install clients/js all
  install tests/browser all
  install tests/reference all
fi
