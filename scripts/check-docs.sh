#!/usr/bin/env bash
# Every file or folder the docs name exists: a path in backquotes or a relative link in the
# README, docs/ and the READMEs beside the code (build output and node_modules are passed
# over: they exist only after a build or an npm install).
# Run as the ctest test `docs`.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
while IFS= read -r doc; do
  dir=$(dirname "$doc")
  # `a/b.ext`, `a/b/` and [text](a/b.md) references; URLs, globs and placeholders are not paths.
  grep -oE '`[A-Za-z0-9_.-]+/[A-Za-z0-9_./{},-]*`|\]\([^)#:]+\)' "$doc" | sed -E 's/^`//; s/`$//; s/^\]\(//; s/\)$//' |
  while IFS= read -r ref; do
    case "$ref" in *'*'*|*'<'*|*'…'*|http*|/*|*' '*|build/*|build-*|*node_modules*) continue ;; esac
    # a/b.{hpp,cpp} names two files
    if [[ $ref =~ ^(.*)\{([^}]*)\}(.*)$ ]]; then
      alts=${BASH_REMATCH[2]}; paths=()
      for alt in ${alts//,/ }; do paths+=("${BASH_REMATCH[1]}$alt${BASH_REMATCH[3]}"); done
    else
      paths=("$ref")
    fi
    for p in "${paths[@]}"; do
      p=${p%/}
      base=${p%%/*}
      # Relative to the doc or to the repository root; a module may be named without its
      # ending (core/rate_limiter: .hpp and .cpp).
      # A tracked link counts even before what it points to is installed (web/vendor/msgpack).
      [ -e "$dir/$p" ] || [ -e "$p" ] || [ -L "$p" ] || [ -e "$p.hpp" ] || [ -e "$p.cpp" ] && continue
      # What the engine writes where it runs, and the layer still to come.
      case "$base" in troupe-data|cluster) continue ;; esac
      echo "$doc: names $p, which is not in the repository" >&2
      echo x
    done
  done
done < <(git ls-files 'README.md' 'docs/*.md' '*/README.md' '*/*/README.md' 'clients/*/*.md' | grep -v node_modules) | grep -q x && status=1
exit $status
