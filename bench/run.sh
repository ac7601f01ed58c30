#!/usr/bin/env bash
# Runs the fan-out and idle-memory benchmark against Troupe and its peers (node `ws`,
# uWebSockets.js, native uWebSockets, the one-write floor, Socket.IO 4) in one go, in
# interleaved rounds, and prints the results side by side as JSON. See bench/README.md.
#
#   bench/run.sh [--quick] [--servers troupe,ws,uwsjs,uws,floor,socketio] [--rounds 2]
#                [--scenarios 1x200,10x20,1x1000] [--loads 20000,50000,100000,max]
#                [--points 1x200@50000,10x20@50000,1x200@max] [--idle N] [--warmup S]
#                [--window S] [--windows N] [--retries N] [--skip-build] [--troupe-args "…"]
#                [--troupe-before BIN] [--troupe-before-args "…"] [--uws-bin PATH]
#   bench/run.sh --presence [--presence-members 2000] [--presence-spreads 2000,0]
#                [--presence-repeat 5] [--skip-build] [--troupe-args "…"]
#
# --troupe-before BIN adds the server "troupe-before": another build of the engine (say, the
# commit before a change), run the same way in the same run, so before and after compare
# under the same conditions. --troupe-before-args adds flags for it alone (after
# --troupe-args): `--troupe-before build-bench/troupe --troupe-before-args "--store sqlite"`
# measures the durable store against the memory store in one run.
#
# --rounds N runs the whole server set N times, interleaved (round 1: every server, then
# round 2: every server again…), each time on a fresh server process; the table shows
# every round's figure.
#
# --points runs only the listed scenario@load points (load: deliveries/s or max) instead of
# the cross product of --scenarios and --loads.
#
# The engine runs with --rate 0 --store memory here (TROUPE_RATE/TROUPE_STORE, so a flag in
# --troupe-args wins): the peers have no budgets and no storage. --presence keeps the
# durable default store.
#
# --uws-bin PATH (or TROUPE_BENCH_UWS_BIN) is the native uWebSockets peer, built outside
# this repository; without it the server `uws` is skipped with a message.
#
# --presence runs the presence join instead, against troupe only (the peers have no
# presence): each run on a fresh engine.
#
# Each server runs pinned to core 0 and the load generator to core 1. Results go to stdout
# (one JSON object per line, the side-by-side summary last), progress and a table to
# stderr, and a copy of everything to build-bench/bench-results/.
set -euo pipefail
self=$(readlink -f "$0")
cd "$(dirname "$self")/.."
ROOT=$(pwd)
BUILD="$ROOT/build-bench"

quick=0
servers="troupe,ws,uwsjs,uws,floor,socketio"
rounds=2 points=""
uws_bin="${TROUPE_BENCH_UWS_BIN:-}"
scenarios="" loads="" idle="" warmup="" window="" windows="" retries=""
skip_build=0
troupe_args="${TROUPE_BENCH_ARGS:-}"
troupe_before="" troupe_before_args=""
presence=0 presence_members=2000 presence_spreads="2000,0" presence_repeat=5
while (($#)); do
  case "$1" in
    --quick) quick=1 ;;
    --servers) servers="$2"; shift ;;
    --rounds) rounds="$2"; shift ;;
    --points) points="$2"; shift ;;
    --uws-bin) uws_bin="$2"; shift ;;
    --scenarios) scenarios="$2"; shift ;;
    --loads) loads="$2"; shift ;;
    --idle) idle="$2"; shift ;;
    --warmup) warmup="$2"; shift ;;
    --window) window="$2"; shift ;;
    --windows) windows="$2"; shift ;;
    --retries) retries="$2"; shift ;;
    --skip-build) skip_build=1 ;;
    --troupe-args) troupe_args="$2"; shift ;;
    --troupe-before) troupe_before=$(readlink -f "$2"); shift ;;
    --troupe-before-args) troupe_before_args="$2"; shift ;;
    --presence) presence=1 ;;
    --presence-members) presence_members="$2"; shift ;;
    --presence-spreads) presence_spreads="$2"; shift ;;
    --presence-repeat) presence_repeat="$2"; shift ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$self"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[ "$presence" -eq 1 ] && servers="troupe"
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --rounds wants a whole number >= 1" >&2; exit 2; }
[ -n "$troupe_before" ] && servers="troupe-before,$servers"

log() { echo "[run.sh] $*" >&2; }
# shellcheck source=bench/listening_port.sh
source bench/listening_port.sh

# ---- what it needs ----------------------------------------------------------------------
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
apt_install() {
  log "installing $* (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" apt-get install -y -qq --no-install-recommends "$@"
}
if [ -x scripts/install-deps.sh ] && [ "$skip_build" -eq 0 ]; then
  bash scripts/install-deps.sh   # the engine's build dependencies (Debian packages)
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then apt_install nodejs npm; fi
command -v taskset >/dev/null || apt_install util-linux

# npm records what it installed in node_modules/.package-lock.json: reinstall when the
# committed lock file is newer.
if [[ ",$servers," == *,ws,* || ",$servers," == *,socketio,* || ",$servers," == *,uwsjs,* ]] &&
   { [ ! -f bench/peers/node_modules/.package-lock.json ] ||
     [ bench/peers/package-lock.json -nt bench/peers/node_modules/.package-lock.json ]; }; then
  log "npm ci in bench/peers"
  (cd bench/peers && npm ci --no-audit --no-fund --loglevel=error >&2)
fi

# ---- build ------------------------------------------------------------------------------
loadgen="$BUILD/bench/troupe_loadgen"
floor_bin="$BUILD/bench/floor/troupe_floor"
troupe_bin="$BUILD/troupe"
if [ "$skip_build" -eq 0 ]; then
  log "building troupe and troupe_loadgen in build-bench/"
  if cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >"$BUILD.configure.log" 2>&1 &&
     cmake --build "$BUILD" -j"$(nproc)" --target troupe troupe_loadgen troupe_floor >"$BUILD.build.log" 2>&1; then
    :
  else
    # The engine may not build yet (work in progress elsewhere); the generator does not
    # depend on it, so build it on its own and benchmark what can run.
    log "the full build failed (see $BUILD.configure.log / $BUILD.build.log); building the generator alone"
    cmake -S bench -B "$BUILD/loadgen-only" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$BUILD/loadgen-only" -j"$(nproc)" >&2
    loadgen="$BUILD/loadgen-only/troupe_loadgen"
    floor_bin="$BUILD/loadgen-only/floor/troupe_floor"
  fi
fi
[ -x "$loadgen" ] || loadgen="$BUILD/loadgen-only/troupe_loadgen"
[ -x "$floor_bin" ] || floor_bin="$BUILD/loadgen-only/floor/troupe_floor"
[ -x "$loadgen" ] || { log "no troupe_loadgen built"; exit 1; }

# ---- plans ------------------------------------------------------------------------------
# A plan is one generator invocation against the running server; the idle scenario goes
# first so that it meets a fresh server.
common=()
[ -n "$warmup" ] && common+=(--warmup "$warmup")
[ -n "$window" ] && common+=(--window "$window")
[ -n "$windows" ] && common+=(--windows "$windows")
[ -n "$retries" ] && common+=(--retries "$retries")
plans=()
if [ -n "$points" ]; then
  # One plan per scenario, with its loads in the order given; idle memory with the first.
  declare -A point_loads=()
  point_order=()
  for p in ${points//,/ }; do
    [[ "$p" =~ ^[0-9]+x[0-9]+@([0-9]+|max)$ ]] || { echo "run.sh: bad point $p (want 1x200@50000 or 1x200@max)" >&2; exit 2; }
    s=${p%@*}
    [ -n "${point_loads[$s]:-}" ] || point_order+=("$s")
    point_loads[$s]="${point_loads[$s]:+${point_loads[$s]},}${p#*@}"
  done
  first=1
  for s in "${point_order[@]}"; do
    idle_n=0
    [ "$first" -eq 1 ] && idle_n="${idle:-10000}"
    first=0
    plans+=("--idle $idle_n --scenarios $s --loads ${point_loads[$s]} ${common[*]}")
  done
elif [ -n "$scenarios$loads$idle" ] || [ "$quick" -eq 0 ]; then
  plan=(--idle "${idle:-10000}" --scenarios "${scenarios:-1x200,10x20,1x1000}"
        --loads "${loads:-20000,50000,100000,max}")
  [ "$quick" -eq 1 ] && plan+=(--warmup 1 --window 2 --windows 2 --settle 2)
  plans+=("${plan[*]} ${common[*]}")
else
  # Quick: the headline shape at every load, the other two at 50k only.
  plans+=("--idle 10000 --settle 2 --scenarios 1x200 --loads 20000,50000,100000,max --warmup 1 --window 1.5 --windows 2 --retries 2 ${common[*]}")
  plans+=("--idle 0 --scenarios 10x20,1x1000 --loads 50000 --warmup 1 --window 2 --windows 1 --retries 2 ${common[*]}")
fi

# ---- servers ----------------------------------------------------------------------------
# Enough descriptors for 10,000 connections on each side.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

results_dir="$BUILD/bench-results"
mkdir -p "$results_dir"
stamp=$(date +%Y%m%d-%H%M%S)
results="$results_dir/$stamp.jsonl"
: >"$results"
log "results: $results"
# Every point and idle line carries the commit measured (and its round), so that runs of
# different commits can be compared and plotted from bench-results/runs.jsonl.
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- 2>/dev/null || commit="$commit+dirty"

server_pid="" data_dir=""
stop_server() {
  if [ -n "$server_pid" ]; then
    if kill -0 "$server_pid" 2>/dev/null; then
      kill -TERM "$server_pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$server_pid" 2>/dev/null || true
    fi
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
  if [ -n "$data_dir" ]; then rm -rf "$data_dir"; data_dir=""; fi
}
trap stop_server EXIT
trap 'exit 130' INT TERM

note() {  # a line for the results when a server cannot be measured
  printf '{"type":"error","server":"%s","error":"%s"}\n' "$1" "$2" | tee -a "$results"
}

# Starts server $1 on core 0 and waits for its port: sets server_pid and port, or returns 1.
start_server() {
  local kind=$1
  server_log="$results_dir/$stamp-$kind${2:+-$2}.log"
  case "$kind" in
    troupe|troupe-before)
      local bin=$troupe_bin extra=""
      [ "$kind" = troupe-before ] && bin=$troupe_before extra=$troupe_before_args
      if [ ! -x "$bin" ]; then note "$kind" "no engine at $bin"; return 1; fi
      # A fresh data directory, also the working directory, removed when the server stops:
      # nothing lands in the tree and no run sees another's rooms. Under build-bench/, not a
      # possibly tmpfs /tmp, so that a durable store (--presence, or --store sqlite in
      # troupe_args) writes to a real disk. TROUPE_DATA, TROUPE_RATE and TROUPE_STORE, so
      # that a --data, --rate or --store in troupe_args still wins.
      data_dir=$(mktemp -d "$BUILD/troupe-data.XXXXXX")
      # No request budget: load generators publish far past 100/s per connection. In the
      # side by side, the memory store too: the peers keep nothing (TROUPE_STORE, so a
      # --store in troupe_args wins); the presence join keeps the durable default.
      local store=memory
      [ "$presence" -eq 1 ] && store=""
      # shellcheck disable=SC2086
      (cd "$data_dir" && exec env TROUPE_DATA="$data_dir/data" TROUPE_RATE=0 ${store:+TROUPE_STORE=$store} \
         taskset -c 0 "$bin" --host 127.0.0.1 --port 0 $troupe_args $extra) >"$server_log" 2>&1 &
      ;;
    ws) taskset -c 0 node bench/peers/ws-server.js --port 0 >"$server_log" 2>&1 & ;;
    uwsjs) taskset -c 0 node bench/peers/uws-server.js --port 0 >"$server_log" 2>&1 & ;;
    uws)
      # Native uWebSockets: built outside this repository (see bench/README.md).
      if [ -z "$uws_bin" ] || [ ! -x "$uws_bin" ]; then
        log "uws: skipped: no native uWebSockets peer (--uws-bin PATH or TROUPE_BENCH_UWS_BIN${uws_bin:+; $uws_bin is not executable})"
        note uws "skipped: no native uWebSockets peer binary (--uws-bin PATH)"
        return 1
      fi
      taskset -c 0 "$uws_bin" --host 127.0.0.1 --port 0 >"$server_log" 2>&1 &
      ;;
    floor)
      if [ ! -x "$floor_bin" ]; then note floor "no troupe_floor at $floor_bin"; return 1; fi
      taskset -c 0 "$floor_bin" --host 127.0.0.1 --port 0 >"$server_log" 2>&1 &
      ;;
    socketio) taskset -c 0 node bench/peers/socketio-server.js --port 0 >"$server_log" 2>&1 & ;;
    *) log "unknown server $kind"; return 1 ;;
  esac
  server_pid=$!
  port=$(listening_port "$server_log" "$server_pid")
  if [ -z "$port" ]; then
    note "$kind" "server did not report 'listening on HOST:PORT' (log: $server_log)"
    tail -n 20 "$server_log" >&2 || true
    stop_server
    return 1
  fi
  log "$kind: pid $server_pid, port $port"
}

if [ "$presence" -eq 1 ]; then
  # A fresh engine per run: the previous run's 2,000 connections and its allocator's
  # leftovers would otherwise be in the next run's RSS and CPU.
  for run in $(seq "$presence_repeat"); do
    for spread in ${presence_spreads//,/ }; do
      start_server troupe "presence-$spread-$run" || continue
      taskset -c 1 "$loadgen" --kind troupe --label troupe --port "$port" --server-pid "$server_pid" \
        --presence-join "$presence_members" --join-spread-ms "$spread" | tee -a "$results" ||
        note troupe "troupe_loadgen: presence join (spread $spread ms) failed or was not correct"
      kill -0 "$server_pid" 2>/dev/null || note troupe "server exited during the run"
      stop_server
    done
  done
  node bench/report.js "$results" | tee "$results_dir/$stamp-summary.json"
  exit 0
fi

skipped=""
for round in $(seq "$rounds"); do
  for kind in ${servers//,/ }; do
    [[ " $skipped " == *" $kind "* ]] && continue
    [ "$rounds" -gt 1 ] && log "round $round of $rounds: $kind"
    if ! start_server "$kind" "r$round"; then
      # A server that cannot start (no binary) is not tried again in the next rounds.
      [ "$kind" = uws ] && skipped="$skipped $kind"
      continue
    fi
    case "$kind" in
      troupe|troupe-before) dialect=troupe ;;
      socketio) dialect=socketio ;;
      *) dialect=ws ;; # ws, uwsjs, uws and floor speak Troupe's protocol subset
    esac
    for plan in "${plans[@]}"; do
      # shellcheck disable=SC2086
      taskset -c 1 "$loadgen" --kind "$dialect" --label "$kind" --port "$port" \
        --server-pid "$server_pid" --round "$round" --commit "$commit" $plan | tee -a "$results" ||
        note "$kind" "troupe_loadgen exited with an error"
      kill -0 "$server_pid" 2>/dev/null || { note "$kind" "server exited during the run"; break; }
    done
    stop_server
  done
done
grep -h '"type":"\(point\|idle\)"' "$results" >>"$results_dir/runs.jsonl" || true
log "plot: bench/plot.sh $results"

# ---- side by side -----------------------------------------------------------------------
node bench/report.js "$results" --markdown "$results_dir/$stamp-table.md" |
  tee "$results_dir/$stamp-summary.json"
