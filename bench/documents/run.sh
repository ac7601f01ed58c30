#!/usr/bin/env bash
# Every document benchmark in one go, printed as JSON lines (see bench/README.md), in
# interleaved rounds (every round is reported, not only the best):
#   1. the OT library and the rope alone (troupe_ot_bench), once;
#   2. the document's state, and the document actor in process at one operation per message:
#      with the memory store, then durable (a SQLite store, synchronous=NORMAL and FULL, and
#      the storage actor; every ack after its commit) (troupe_doc_bench inproc, actor); and
#      again with the operations of one 64 KiB socket read handed over in one message, as the
#      engine's connection hands over a pipelining client's one-operation messages
#      (document_actor_per_read; --per-read BYTES, 0: not run);
#   3. a running engine, once per store (--store memory, --store sqlite --sync normal,
#      --store sqlite --sync full, each on a fresh data directory, removed after): the trace
#      replayed over one WebSocket, one operation per WebSocket message, pipelined, and
#      concurrent editors through the C++ client library (troupe_doc_bench ws,
#      troupe_editors_bench).
# Then every round side by side (a table on stderr, a "documents_summary" JSON line).
#
#   bench/documents/run.sh [--trace automerge-paper] [--editors 20] [--seconds 5]
#                          [--stores memory,sqlite-normal,sqlite-full] [--rounds 3] [--runs 3]
#                          [--batch 1] [--per-read 65536] [--data-parent DIR] [--build DIR]
#                          [--skip-build]
#                          [--troupe-args "…"]
#
# --runs: runs of each in-process and WebSocket measurement per round (each printed);
# --batch: operations per message (1: one per message, as an editor sends them).
# The engine runs pinned to core 0 and the clients to core 1; the in-process runs use core 1.
# Data directories go under --data-parent (default: the build directory, so that the disk
# measured is the one you build on, not a tmpfs /tmp).
set -euo pipefail
self=$(readlink -f "$0")
cd "$(dirname "$self")/../.."
ROOT=$(pwd)
BUILD="$ROOT/build-bench"

trace=automerge-paper editors=20 seconds=5 skip_build=0 troupe_args="" runs=3 rounds=3 batch=1
per_read=65536
stores="memory,sqlite-normal,sqlite-full" data_parent=""
while (($#)); do
  case "$1" in
    --trace) trace="$2"; shift ;;
    --editors) editors="$2"; shift ;;
    --seconds) seconds="$2"; shift ;;
    --stores) stores="$2"; shift ;;
    --runs) runs="$2"; shift ;;
    --rounds) rounds="$2"; shift ;;
    --batch) batch="$2"; shift ;;
    --per-read) per_read="$2"; shift ;;
    --data-parent) data_parent="$2"; shift ;;
    --build) BUILD=$(readlink -f "$2"); shift ;;
    --skip-build) skip_build=1 ;;
    --troupe-args) troupe_args="$2"; shift ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$self"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$data_parent" ] || data_parent="$BUILD"
log() { echo "[documents] $*" >&2; }
# shellcheck source=bench/listening_port.sh
source bench/listening_port.sh

store_flags() {  # the engine's flags for a store name
  case "$1" in
    memory) echo "--store memory" ;;
    sqlite-normal) echo "--store sqlite --sync normal" ;;
    sqlite-full) echo "--store sqlite --sync full" ;;
    *) log "unknown store $1 (memory, sqlite-normal, sqlite-full)"; exit 2 ;;
  esac
}
for store in ${stores//,/ }; do store_flags "$store" >/dev/null; done

if [ "$skip_build" -eq 0 ]; then
  bash scripts/install-deps.sh
  command -v taskset >/dev/null || { apt-get update -qq && apt-get install -y -qq util-linux; }
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD" -j"$(nproc)" --target troupe troupe_ot_bench troupe_doc_bench \
    troupe_editors_bench >&2
fi
bin="$BUILD/bench/documents"
pin_client=(taskset -c 1) pin_server=(taskset -c 0)
[ "$(nproc)" -ge 2 ] || { pin_client=(); pin_server=(); }
mkdir -p "$data_parent"

lines=$(mktemp)  # every JSON line, for the summary
server_pid="" run_dir=""
stop_engine() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
  if [ -n "$run_dir" ]; then rm -rf "$run_dir"; run_dir=""; fi
}
trap 'stop_engine; rm -f "$lines"' EXIT
trap 'exit 130' INT TERM
status=0
emit() { tee -a "$lines"; }

"${pin_client[@]}" "$bin/troupe_ot_bench" "$trace" | emit || status=1
for round in $(seq "$rounds"); do
  tag() { sed "s/^{/{\"round\":$round,/"; }
  log "round $round of $rounds"
  "${pin_client[@]}" "$bin/troupe_doc_bench" inproc --trace "$trace" --runs "$runs" | tag |
    emit || status=1
  for store in ${stores//,/ }; do
    case "$store" in
      memory) actor_flags=(--store memory) ;;
      sqlite-normal) actor_flags=(--store sqlite --sync normal --data-parent "$data_parent") ;;
      sqlite-full) actor_flags=(--store sqlite --sync full --data-parent "$data_parent") ;;
    esac
    "${pin_client[@]}" "$bin/troupe_doc_bench" actor --trace "$trace" --runs "$runs" \
      --batch "$batch" "${actor_flags[@]}" | tag | emit || status=1
    if [ "$per_read" -gt 0 ]; then
      "${pin_client[@]}" "$bin/troupe_doc_bench" actor --trace "$trace" --runs "$runs" \
        --per-read "$per_read" "${actor_flags[@]}" | tag | emit || status=1
    fi
  done

  for store in ${stores//,/ }; do
    # A fresh directory per engine, also its working directory: nothing lands in the tree.
    run_dir=$(mktemp -d "$data_parent/doc-bench-$store.XXXXXX")
    flags=$(store_flags "$store")
    [ "$store" = memory ] || flags+=" --data $run_dir/data"
    server_log="$run_dir/engine.log"
    : >"$server_log" # there before listening_port reads it
    # No request budget: a replayed trace pipelines far past 100 ops/s (TROUPE_RATE, so that
    # a --rate in troupe_args still wins).
    # shellcheck disable=SC2086
    (cd "$run_dir" && TROUPE_RATE=0 exec "${pin_server[@]}" "$BUILD/troupe" --host 127.0.0.1 \
       --port 0 $flags $troupe_args) >"$server_log" 2>&1 &
    server_pid=$!
    port=$(listening_port "$server_log" "$server_pid")
    [ -n "$port" ] || { log "$store: the engine did not start:"; cat "$server_log" >&2; exit 1; }
    log "$store: engine pid $server_pid on port $port ($flags, $(stat -f -c %T "$run_dir"))"
    "${pin_client[@]}" "$bin/troupe_doc_bench" ws --port "$port" --trace "$trace" \
      --runs "$runs" --batch "$batch" --label "$store" | tag | emit || status=1
    # troupe_editors_bench does not know the store: its line gets it here.
    "${pin_client[@]}" "$bin/troupe_editors_bench" --port "$port" --editors "$editors" \
      --seconds "$seconds" | sed "s/^{\"bench\":\"concurrent_editors\"/&,\"store\":\"$store\"/" |
      tag | emit || status=1
    kill -0 "$server_pid" 2>/dev/null || { log "$store: the engine exited during the run"; status=1; }
    stop_engine
  done
done

# ---- side by side ------------------------------------------------------------------------
awk -v stores="$stores" -v trace="$trace" -v rounds="$rounds" '
  function field(line, key,   m) {
    if (match(line, "\"" key "\":(\"[^\"]*\"|\\[[^]]*\\]|[^,}]*)")) {
      m = substr(line, RSTART + length(key) + 3, RLENGTH - length(key) - 3)
      gsub(/"/, "", m)
      return m
    }
    return ""
  }
  {
    b = field($0, "bench"); s = field($0, "store"); r = field($0, "round")
    if (b == "document_sequencer") s = "memory"
    if (b == "" || s == "" || r == "") next
    key = b SUBSEP s SUBSEP r
    median[key] = field($0, "median_ms"); runs[key] = field($0, "runs_ms")
    ops[key] = field($0, "ops_per_s"); ok[key] = field($0, "ok")
    p50[key] = field($0, "ack_p50_ms"); p99[key] = field($0, "ack_p99_ms")
    p999[key] = field($0, "ack_p999_ms")
    per_commit[key] = field($0, "ops_per_commit"); reloaded[key] = field($0, "reloaded")
    patches = field($0, "patches") != "" ? field($0, "patches") : patches
  }
  function cell(v, flag) { return v == "" ? "-" : v (flag == "false" ? " !" : "") }
  END {
    n = split(stores, names, ",")
    printf "\n%s (%s edits), one operation per message; per round (ms: the runs of that round):\n", trace, patches > "/dev/stderr"
    for (r = 1; r <= rounds; r++) {
      printf "round %d%-29s", r, "" > "/dev/stderr"
      for (i = 1; i <= n; i++) printf " %24s", names[i] > "/dev/stderr"
      printf "\n" > "/dev/stderr"
      row("document state, in process (ms)", "document_sequencer", "runs", r)
      row("document actor, in process (ms)", "document_actor", "runs", r)
      row("  ops per commit", "document_actor", "per_commit", r)
      row("document actor, per read (ms)", "document_actor_per_read", "runs", r)
      row("WebSocket replay (ms)", "websocket_replay", "runs", r)
      row("concurrent editors (ops/s)", "concurrent_editors", "ops", r)
      row("  ack p50 (ms)", "concurrent_editors", "p50", r)
      row("  ack p99 (ms)", "concurrent_editors", "p99", r)
      row("  ack p99.9 (ms)", "concurrent_editors", "p999", r)
    }
    printf "(! the check failed: final text, or for the durable actor the reload)\n" > "/dev/stderr"
    printf "{\"type\":\"documents_summary\",\"trace\":\"%s\",\"rounds\":[", trace
    for (r = 1; r <= rounds; r++) {
      printf "%s{\"round\":%d", (r > 1 ? "," : ""), r
      for (i = 1; i <= n; i++) {
        s = names[i]
        printf ",\"%s\":{\"actor_ms\":%s,\"websocket_ms\":%s,\"editors_ops_per_s\":%s,\"editors_ack_p99_ms\":%s,\"editors_ack_p999_ms\":%s}", s,
          num(median["document_actor" SUBSEP s SUBSEP r]), num(median["websocket_replay" SUBSEP s SUBSEP r]),
          num(ops["concurrent_editors" SUBSEP s SUBSEP r]), num(p99["concurrent_editors" SUBSEP s SUBSEP r]),
          num(p999["concurrent_editors" SUBSEP s SUBSEP r])
      }
      printf "}"
    }
    printf "]}\n"
  }
  function num(v) { return v == "" ? "null" : v }
  function row(label, bench, what, r,   i, key, v) {
    printf "%-36s", label > "/dev/stderr"
    for (i = 1; i <= n; i++) {
      key = bench SUBSEP names[i] SUBSEP r
      v = what == "runs" ? runs[key] : what == "ops" ? ops[key] : what == "p50" ? p50[key] : \
          what == "p99" ? p99[key] : what == "p999" ? p999[key] : per_commit[key]
      gsub(/[][]/, "", v); gsub(/,/, " ", v)
      printf " %24s", cell(v, what == "per_commit" ? reloaded[key] : ok[key]) > "/dev/stderr"
    }
    printf "\n" > "/dev/stderr"
  }
' "$lines"
exit "$status"
