#!/usr/bin/env bash
# Formats every C++ file of the tree with .clang-format (Debian's clang-format 14).
#   bash scripts/format.sh          rewrite the files in place
#   bash scripts/format.sh --check  change nothing; list the files that differ, exit 1 if any
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang-format >/dev/null; then
  # A check changes nothing on the machine; formatting may install the tool.
  [ "${1:-}" = "--check" ] && { echo "clang-format is not installed: bash scripts/install-deps.sh" >&2; exit 1; }
  bash scripts/install-deps.sh clang-format
fi
mapfile -t files < <(git ls-files '*.cpp' '*.hpp' | grep -v '^web/vendor/')
if [ "${1:-}" = "--check" ]; then
  bad=0
  for f in "${files[@]}"; do
    clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || { echo "not formatted: $f (bash scripts/format.sh)"; bad=1; }
  done
  exit $bad
fi
clang-format -i "${files[@]}"
