#!/usr/bin/env bash
# The cluster benchmark: a Troupe cluster (3 nodes sharing one Redis) against one Troupe node
# alone and against Socket.IO 4 with @socket.io/redis-adapter (3 nodes, the same Redis
# setup), under the same load, in one run; then a fault round in which one Troupe node is
# killed with SIGKILL mid-run. See bench/README.md, "Cluster".
#
#   bench/cluster/run.sh [--variants single,troupe-cluster,socketio-cluster] [--nodes 3]
#                        [--subs 200] [--loads 5000,20000] [--warmup 2] [--window 3]
#                        [--windows 3] [--retries 1] [--payload 100]
#                        [--fault-loads 5000,20000] [--fault-seconds 8] [--fault-kill-at 3]
#                        [--no-fault] [--server-cpus 0] [--skip-build] [--troupe-args "…"]
#
# --loads are offered deliveries per second (publishes/s = deliveries/s ÷ subscribers: with
# 200 subscribers in the one room, 5,000/s is 25 publishes/s). Every process under test
# (the engines, Socket.IO's nodes, redis-server) runs pinned to --server-cpus (core 0) and
# the load generator to the other core, as bench/run.sh does: the figures are per delivery,
# summed over those processes. Every server gets a free loopback port (port 0, or a free
# port found for Redis) and its own temporary directory; all of them are stopped on exit.
#
# Output: one JSON object per line on stdout (the generator's lines, each tagged with its
# variant, and a "cluster_summary" last), a table of every window on stderr, copies in
# build-bench/bench-results/cluster-*.
set -euo pipefail
self=$(readlink -f "$0")
cd "$(dirname "$self")/../.."
ROOT=$(pwd)
BUILD="$ROOT/build-bench"

variants="single,troupe-cluster,socketio-cluster"
nodes=3 subs=200 loads="5000,20000" warmup=2 window=3 windows=3 retries=1 payload=100
fault=1 fault_loads="5000,20000" fault_seconds=8 fault_kill_at=3
server_cpus=0 skip_build=0
troupe_args="${TROUPE_BENCH_ARGS:-}"
while (($#)); do
  case "$1" in
    --variants) variants="$2"; shift ;;
    --nodes) nodes="$2"; shift ;;
    --subs) subs="$2"; shift ;;
    --loads) loads="$2"; shift ;;
    --warmup) warmup="$2"; shift ;;
    --window) window="$2"; shift ;;
    --windows) windows="$2"; shift ;;
    --retries) retries="$2"; shift ;;
    --payload) payload="$2"; shift ;;
    --fault-loads|--fault-load) fault_loads="$2"; shift ;;
    --fault-seconds) fault_seconds="$2"; shift ;;
    --fault-kill-at) fault_kill_at="$2"; shift ;;
    --no-fault) fault=0 ;;
    --server-cpus) server_cpus="$2"; shift ;;
    --skip-build) skip_build=1 ;;
    --troupe-args) troupe_args="$2"; shift ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$self"; exit 0 ;;
    *) echo "cluster/run.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
((nodes >= 2)) || { echo "cluster/run.sh: --nodes must be at least 2" >&2; exit 2; }

log() { echo "[cluster] $*" >&2; }
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
  bash scripts/install-deps.sh
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then apt_install nodejs npm; fi
command -v taskset >/dev/null || apt_install util-linux
command -v redis-server >/dev/null && command -v redis-cli >/dev/null || apt_install redis-server redis-tools
if [[ ",$variants," == *,socketio-cluster,* ]] &&
   { [ ! -f bench/peers/node_modules/.package-lock.json ] ||
     [ bench/peers/package-lock.json -nt bench/peers/node_modules/.package-lock.json ]; }; then
  log "npm ci in bench/peers"
  (cd bench/peers && npm ci --no-audit --no-fund --loglevel=error >&2)
fi

# ---- build (as bench/run.sh) --------------------------------------------------------------
loadgen="$BUILD/bench/troupe_loadgen"
troupe_bin="$BUILD/troupe"
if [ "$skip_build" -eq 0 ]; then
  log "building troupe and troupe_loadgen in build-bench/"
  mkdir -p "$BUILD"
  if cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >"$BUILD.configure.log" 2>&1 &&
     cmake --build "$BUILD" -j"$(nproc)" --target troupe troupe_loadgen >"$BUILD.build.log" 2>&1; then
    :
  else
    log "the full build failed (see $BUILD.configure.log / $BUILD.build.log); building the generator alone"
    cmake -S bench -B "$BUILD/loadgen-only" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$BUILD/loadgen-only" -j"$(nproc)" >&2
    loadgen="$BUILD/loadgen-only/troupe_loadgen"
    troupe_bin=""
  fi
fi
[ -x "$loadgen" ] || loadgen="$BUILD/loadgen-only/troupe_loadgen"
[ -x "$loadgen" ] || { log "no troupe_loadgen built"; exit 1; }

ncpu=$(nproc)
gen_cpu=$(( ncpu > 1 ? ncpu - 1 : 0 ))
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

results_dir="$BUILD/bench-results"
mkdir -p "$results_dir"
stamp=$(date +%Y%m%d-%H%M%S)
results="$results_dir/cluster-$stamp.jsonl"
: >"$results"
log "results: $results"

# ---- processes ----------------------------------------------------------------------------
pids=() tmpdirs=()
stop_all() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  pids=()
  for d in "${tmpdirs[@]}"; do rm -rf "$d"; done
  tmpdirs=()
}
trap stop_all EXIT
trap 'exit 130' INT TERM

note() {  # a line for the results when a variant cannot be measured
  printf '{"type":"error","variant":"%s","error":"%s"}\n' "$1" "$2" | tee -a "$results"
}

free_port() {  # a port nothing listens on now (the kernel's pick for an ephemeral bind)
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
    node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# start_redis: sets redis_port and redis_pid, or returns 1. A port found free can be taken
# before Redis binds it: then try another (bounded).
start_redis() {
  local dir log
  dir=$(mktemp -d "${TMPDIR:-/tmp}/troupe-cluster-redis.XXXXXX"); tmpdirs+=("$dir")
  log="$results_dir/cluster-$stamp-$1-redis.log"
  for _ in 1 2 3 4 5; do
    redis_port=$(free_port)
    taskset -c "$server_cpus" redis-server --port "$redis_port" --bind 127.0.0.1 --save "" \
      --appendonly no --dir "$dir" --daemonize no >"$log" 2>&1 &
    redis_pid=$!
    for _ in $(seq 100); do
      redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && { pids+=("$redis_pid"); return 0; }
      kill -0 "$redis_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  done
  note "$1" "redis-server did not start (log: $log)"
  return 1
}

# start_node KIND NAME [REDIS_URL]: sets node_pid and node_port, or returns 1.
start_node() {
  local kind=$1 name=$2 url=${3:-} log="$results_dir/cluster-$stamp-$2.log"
  case "$kind" in
    troupe)
      [ -n "$troupe_bin" ] && [ -x "$troupe_bin" ] || { note "$name" "no engine at $troupe_bin"; return 1; }
      local dir
      dir=$(mktemp -d "$BUILD/troupe-data.XXXXXX"); tmpdirs+=("$dir")
      # shellcheck disable=SC2086
      (cd "$dir" && exec taskset -c "$server_cpus" "$troupe_bin" --host 127.0.0.1 --port 0 \
         --rate 0 --store memory --data "$dir/data" ${url:+--redis "$url"} $troupe_args) >"$log" 2>&1 &
      ;;
    socketio)
      taskset -c "$server_cpus" node bench/peers/socketio-server.js --port 0 ${url:+--redis "$url"} \
        >"$log" 2>&1 &
      ;;
  esac
  node_pid=$!
  pids+=("$node_pid")
  node_port=$(listening_port "$log" "$node_pid")
  if [ -z "$node_port" ]; then
    note "$name" "did not report 'listening on HOST:PORT' (log: $log)"
    tail -n 20 "$log" >&2 || true
    return 1
  fi
  log "$name: pid $node_pid, port $node_port"
}

# Tags every JSON line of the generator with the variant.
tag() { sed -u "s/^{/{\"variant\":\"$1\",/"; }

fanout_args=(--idle 0 --scenarios "1x$subs" --loads "$loads" --warmup "$warmup" --window "$window"
             --windows "$windows" --retries "$retries" --payload "$payload")

# run_variant NAME KIND NODES USE_REDIS
run_variant() {
  local name=$1 kind=$2 n=$3 use_redis=$4
  local ports=() server_pids=() names=() url="" redis_args=()
  log "---- $name: $n $kind node(s)$([ "$use_redis" = 1 ] && echo " + redis-server")"
  if [ "$use_redis" = 1 ]; then
    start_redis "$name" || return 0
    url="redis://127.0.0.1:$redis_port"
    redis_args=(--redis-port "$redis_port")
    log "$name: redis-server pid $redis_pid, port $redis_port"
  fi
  for i in $(seq 1 "$n"); do
    start_node "$kind" "$name-node$i" "$url" || { stop_all; return 0; }
    ports+=("$node_port"); server_pids+=("$node_pid"); names+=("node$i")
  done
  if [ "$use_redis" = 1 ]; then server_pids+=("$redis_pid"); names+=("redis"); fi
  local p_list s_list n_list
  p_list=$(IFS=,; echo "${ports[*]}"); s_list=$(IFS=,; echo "${server_pids[*]}"); n_list=$(IFS=,; echo "${names[*]}")
  taskset -c "$gen_cpu" "$loadgen" --kind "$kind" --label "$name" --port "$p_list" \
    --server-pid "$s_list" --pid-names "$n_list" "${redis_args[@]}" "${fanout_args[@]}" |
    tag "$name" | tee -a "$results" || note "$name" "troupe_loadgen exited with an error"
  local pid
  for pid in "${server_pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || note "$name" "a server process ($pid) exited during the run"
  done
  if [ "$kind" = troupe ] && [ "$n" -eq 1 ] && [ "$fault" -eq 1 ]; then
    # The harness's own check: the same round against the single engine listed twice, the
    # generator dropping the sockets of "node 2"'s clients instead of a kill (the engine
    # stays up, so recovery must be exact): it must count 0 lost and 0 duplicated, so what
    # the cluster's round counts is the cluster's.
    for fl in ${fault_loads//,/ }; do
      taskset -c "$gen_cpu" "$loadgen" --kind troupe --label "$name-selftest" \
        --port "$p_list,$p_list" --server-pid "$s_list" --payload "$payload" \
        --fault-round 1 --fault-mode drop --fault-kill 1 --fault-subs "$subs" \
        --fault-load "$fl" --fault-seconds "$fault_seconds" --fault-kill-at "$fault_kill_at" |
        tag "$name" | tee -a "$results" || log "$name: the self-test of the fault round failed (see its line)"
    done
  fi
  if [ "$kind" = troupe ] && [ "$n" -gt 1 ] && [ "$fault" -eq 1 ]; then
    # The fault rounds, on the same cluster and Redis: the generator kills the last node
    # itself, at a known moment of its own timeline; before the next round a fresh node
    # takes the dead one's place.
    local round=0 fl last=$((n - 1))
    for fl in ${fault_loads//,/ }; do
      round=$((round + 1))
      if [ "$round" -gt 1 ]; then
        start_node troupe "$name-node$((n + round - 1))" "$url" || break
        ports[last]=$node_port; server_pids[last]=$node_pid
        p_list=$(IFS=,; echo "${ports[*]}"); s_list=$(IFS=,; echo "${server_pids[*]}")
      fi
      taskset -c "$gen_cpu" "$loadgen" --kind troupe --label "$name" --port "$p_list" \
        --server-pid "$s_list" --pid-names "$n_list" "${redis_args[@]}" --payload "$payload" \
        --fault-round 1 --fault-subs "$subs" --fault-load "$fl" \
        --fault-seconds "$fault_seconds" --fault-kill-at "$fault_kill_at" --fault-kill "$last" |
        tag "$name" | tee -a "$results" || log "$name: the fault round found losses or failed (see its line)"
    done
  fi
  stop_all
}

for v in ${variants//,/ }; do
  case "$v" in
    single) run_variant single troupe 1 0 ;;
    troupe-cluster) run_variant troupe-cluster troupe "$nodes" 1 ;;
    socketio-cluster) run_variant socketio-cluster socketio "$nodes" 1 ;;
    *) log "unknown variant $v" ;;
  esac
done

# ---- table and summary --------------------------------------------------------------------
node bench/cluster/report.js "$results" | tee "$results_dir/cluster-$stamp-summary.json"
