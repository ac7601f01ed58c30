#!/usr/bin/env bash
# The folders are the layers, bottom up: ot < protocol < core < store < cluster < actors <
# transport < engine. A file includes only its own layer and the ones below it, and the pure
# layers include no I/O or actor library. The build runs this before compiling anything
# (target troupe_layers), so a violation fails the build naming the file and the include.
set -euo pipefail
cd "$(dirname "$0")/.."

layers=(ot protocol core store cluster actors transport engine)
# Libraries a layer may not include (extended regular expressions on the include's path).
declare -A banned=(
  [ot]='^(caf|boost|msgpack|sqlite3|hiredis|curl|openssl|jwt)'
  [protocol]='^(caf|boost|sqlite3|hiredis|curl|openssl)'
  [core]='^(caf|boost/(asio|beast)|sqlite3|hiredis|curl)'
  [store]='^(caf|boost/(asio|beast)|hiredis|curl)'
  [cluster]='^(caf|boost/beast)'
  [actors]='^boost/beast'
)

re_local='^[[:space:]]*#[[:space:]]*include[[:space:]]*"([a-z_]+)/'
re_system='^[[:space:]]*#[[:space:]]*include[[:space:]]*<([^>]+)>'

rank() { local i; for i in "${!layers[@]}"; do [ "${layers[$i]}" = "$1" ] && echo "$i" && return; done; }

status=0
for layer in "${layers[@]}"; do
  [ -d "$layer" ] || continue
  me=$(rank "$layer")
  while IFS= read -r -d '' file; do
    while IFS= read -r line; do
      if [[ $line =~ $re_local ]]; then
        to=${BASH_REMATCH[1]}
        r=$(rank "$to")
        if [ -n "$r" ] && [ "$r" -gt "$me" ]; then
          echo "$file: includes $to/ from the $layer layer: $line" >&2
          status=1
        elif [ -z "$r" ] && [ "$to" != "tests" ]; then
          echo "$file: includes $to/, which is no layer: $line" >&2
          status=1
        fi
      elif [[ -n ${banned[$layer]:-} && $line =~ $re_system ]]; then
        inc=${BASH_REMATCH[1]}
        if [[ $inc =~ ${banned[$layer]} ]]; then
          echo "$file: the $layer layer may not include <$inc>" >&2
          status=1
        fi
      fi
    done < "$file"
  done < <(find "$layer" \( -name "*.hpp" -o -name "*.cpp" \) -print0)
done
[ $status -eq 0 ] || echo "layer rule broken: see docs/architecture.md (the layers)" >&2
exit $status
