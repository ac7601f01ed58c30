#!/usr/bin/env bash
# Every document benchmark in one go, printed as JSON lines (see bench/README.md):
#   1. the OT library and the rope alone (troupe_ot_bench);
#   2. the document's state and the document actor, in process (troupe_doc_bench);
#   3. a running engine: the trace replayed over one WebSocket, pipelined, and concurrent
#      editors through the C++ client library (troupe_doc_bench ws, troupe_editors_bench).
#
#   bench/documents/run.sh [--trace automerge-paper] [--editors 20] [--seconds 5]
#                          [--skip-build] [--troupe-args "…"]
#
# The engine runs pinned to core 0 and the clients to core 1; the in-process runs use core 1.
set -euo pipefail
self=$(readlink -f "$0")
cd "$(dirname "$self")/../.."
ROOT=$(pwd)
BUILD="$ROOT/build-bench"

trace=automerge-paper editors=20 seconds=5 skip_build=0 troupe_args=""
while (($#)); do
  case "$1" in
    --trace) trace="$2"; shift ;;
    --editors) editors="$2"; shift ;;
    --seconds) seconds="$2"; shift ;;
    --skip-build) skip_build=1 ;;
    --troupe-args) troupe_args="$2"; shift ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$self"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
log() { echo "[documents] $*" >&2; }
# shellcheck source=bench/listening_port.sh
source bench/listening_port.sh

if [ "$skip_build" -eq 0 ]; then
  bash scripts/install-deps.sh
  command -v taskset >/dev/null || { apt-get update -qq && apt-get install -y -qq util-linux; }
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD" -j"$(nproc)" --target troupe troupe_ot_bench troupe_doc_bench \
    troupe_editors_bench >&2
fi
bin="$BUILD/bench/documents"
pin_client=(taskset -c 1)
[ "$(nproc)" -ge 2 ] || pin_client=()

"${pin_client[@]}" "$bin/troupe_ot_bench" "$trace"
"${pin_client[@]}" "$bin/troupe_doc_bench" inproc --trace "$trace"
"${pin_client[@]}" "$bin/troupe_doc_bench" actor --trace "$trace"

server_log=$(mktemp)
mkdir -p "$BUILD/troupe-run"
# No request budget: a replayed trace pipelines far past 100 ops/s (TROUPE_RATE, so that a
# --rate in troupe_args still wins).
# shellcheck disable=SC2086
(cd "$BUILD/troupe-run" && TROUPE_RATE=0 exec taskset -c 0 "$BUILD/troupe" --host 127.0.0.1 --port 0 $troupe_args) \
  >"$server_log" 2>&1 &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; rm -f "$server_log"' EXIT
port=$(listening_port "$server_log" "$server_pid")
[ -n "$port" ] || { log "the engine did not start:"; cat "$server_log" >&2; exit 1; }
log "engine pid $server_pid on port $port"

"${pin_client[@]}" "$bin/troupe_doc_bench" ws --port "$port" --trace "$trace"
"${pin_client[@]}" "$bin/troupe_editors_bench" --port "$port" --editors "$editors" --seconds "$seconds"
