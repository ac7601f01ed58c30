#!/usr/bin/env bash
# The cost of durability: publish throughput and ack latency of the engine with the memory
# store, SQLite with synchronous=NORMAL and SQLite with synchronous=FULL, side by side in one
# run. See bench/README.md ("Storage").
#
#   bench/storage/run.sh [--quick] [--stores memory,sqlite-normal,sqlite-full]
#                        [--data-parent DIR] [--build DIR] [--skip-build] [--troupe-args "…"]
#                        [-- troupe_store_bench options…]
#
# The three engines are started at once, each pinned to core 0 without a request budget
# (--rate 0), each in a fresh directory (the SQLite ones keep their data there), made under
# --data-parent (default: the build directory, so that the disk measured is the one you build
# on, not a tmpfs /tmp) and removed at the end. The driver, pinned to core 1, measures every
# point against each engine in turn while the others idle.
# JSON lines on stdout (and in BUILD/bench-results/), the table on stderr.
set -euo pipefail
self=$(readlink -f "$0")
cd "$(dirname "$self")/../.."
ROOT=$(pwd)
BUILD="$ROOT/build-bench"

quick=0 skip_build=0 stores="memory,sqlite-normal,sqlite-full" data_parent="" troupe_args=""
driver_args=()
while (($#)); do
  case "$1" in
    --quick) quick=1 ;;
    --stores) stores="$2"; shift ;;
    --data-parent) data_parent="$2"; shift ;;
    --build) BUILD=$(readlink -f "$2"); shift ;;
    --skip-build) skip_build=1 ;;
    --troupe-args) troupe_args="$2"; shift ;;
    --) shift; driver_args=("$@"); break ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$self"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$data_parent" ] || data_parent="$BUILD"
log() { echo "[storage] $*" >&2; }
# shellcheck source=bench/listening_port.sh
source bench/listening_port.sh

if [ "$skip_build" -eq 0 ]; then
  bash scripts/install-deps.sh
  command -v taskset >/dev/null || { apt-get update -qq && apt-get install -y -qq util-linux; }
  log "building troupe and troupe_store_bench in $BUILD"
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD" -j"$(nproc)" --target troupe troupe_store_bench >&2
fi
troupe_bin="$BUILD/troupe"
driver="$BUILD/bench/storage/troupe_store_bench"
[ -x "$troupe_bin" ] && [ -x "$driver" ] || { log "build $troupe_bin and $driver first"; exit 1; }
pin_server=(taskset -c 0) pin_client=(taskset -c 1)
[ "$(nproc)" -ge 2 ] || { pin_server=(); pin_client=(); }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

results_dir="$BUILD/bench-results"
mkdir -p "$results_dir" "$data_parent"
stamp=$(date +%Y%m%d-%H%M%S)
results="$results_dir/store-$stamp.jsonl"

pids=() dirs=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  for dir in "${dirs[@]}"; do rm -rf "$dir"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

targets=()
for store in ${stores//,/ }; do
  case "$store" in
    memory) flags=(--store memory) ;;
    sqlite-normal) flags=(--store sqlite --sync normal) ;;
    sqlite-full) flags=(--store sqlite --sync full) ;;
    *) log "unknown store $store (memory, sqlite-normal, sqlite-full)"; exit 2 ;;
  esac
  # Its own fresh directory, also its working directory: nothing lands in the tree.
  dir=$(mktemp -d "$data_parent/store-bench-$store.XXXXXX")
  dirs+=("$dir")
  [ "$store" = memory ] || flags+=(--data "$dir/data")
  server_log="$results_dir/store-$stamp-$store.log"
  # No request budget: the publishers go far past 100/s each (TROUPE_RATE, so that a --rate
  # in troupe_args still wins).
  # shellcheck disable=SC2086
  (cd "$dir" && TROUPE_RATE=0 exec "${pin_server[@]}" "$troupe_bin" --host 127.0.0.1 --port 0 \
     "${flags[@]}" $troupe_args) >"$server_log" 2>&1 &
  pid=$!
  pids+=("$pid")
  port=$(listening_port "$server_log" "$pid")
  [ -n "$port" ] || { log "$store: the engine did not start:"; cat "$server_log" >&2; exit 1; }
  fs=$(stat -f -c %T "$dir")
  log "$store: pid $pid, port $port, data in $dir ($fs)"
  printf '{"type":"store_engine","store":"%s","pid":%s,"port":%s,"flags":"%s","filesystem":"%s"}\n' \
    "$store" "$pid" "$port" "${flags[*]} $troupe_args" "$fs" | tee -a "$results"
  targets+=(--target "$store=$port:$pid")
done

quick_args=()
[ "$quick" -eq 1 ] && quick_args=(--quick)
# The data directories' block device, for its write and busy figures (other processes' I/O
# shows there too): /dev/vda -> vda; nothing for tmpfs or overlay.
device=$(df --output=source "$data_parent" 2>/dev/null | tail -n 1)
case "$device" in
  /dev/*) device=$(basename "$(readlink -f "$device")"); quick_args+=(--disk "$device") ;;
esac
status=0
"${pin_client[@]}" "$driver" "${targets[@]}" "${quick_args[@]}" "${driver_args[@]}" |
  tee -a "$results" || status=$?
for i in "${!pids[@]}"; do
  kill -0 "${pids[$i]}" 2>/dev/null || { log "an engine exited during the run"; status=1; }
done
log "results: $results"
exit "$status"
