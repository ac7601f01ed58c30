#!/usr/bin/env bash
# Publishing with webhooks on and the backend hanging, against no webhooks at all: the
# webhooks must never slow a room. Interleaved rounds in one run, every round printed.
#
#   bench/webhooks/run.sh [--rounds N] [--loads 20000,max] [--build DIR]
#
# Each round starts a fresh engine (`--rate 0 --store memory`, its own --data) pinned to core 0
# and troupe_loadgen on core 1: 200 subscribers in one room (their joins are 200 presence
# events) and the offered loads. "hanging": `--backend` points at a server that accepts every
# request and never answers (node's http module), so every webhook batch waits out
# --backend-timeout and is retried while events keep coming; "none": no --backend.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
rounds=2 loads=20000,max build="$root/build"
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift ;;
    --loads) loads="$2"; shift ;;
    --build) build="$2"; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
troupe="$build/troupe" loadgen="$build/bench/troupe_loadgen"
for bin in "$troupe" "$loadgen"; do
  [ -x "$bin" ] || { echo "missing $bin: build the engine and bench/ first (scripts/build.sh)" >&2; exit 1; }
done
command -v node >/dev/null || { echo "node is needed for the hanging backend" >&2; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# The hanging backend: accepts, reads, never answers.
node -e '
  const s = require("http").createServer(() => {});
  s.listen(0, "127.0.0.1", () => console.log("listening on 127.0.0.1:" + s.address().port));
' > "$work/backend.log" &
pids+=($!)
for _ in $(seq 50); do grep -q listening "$work/backend.log" && break; sleep 0.1; done
backend_port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/backend.log")
[ -n "$backend_port" ] || { echo "the hanging backend did not start" >&2; exit 1; }

run_round() { # variant round
  local variant=$1 round=$2 dir="$work/$1-$2" args=()
  mkdir -p "$dir"
  [ "$variant" = hanging ] && args=(--backend "http://127.0.0.1:$backend_port" --backend-timeout 1)
  taskset -c 0 "$troupe" --host 127.0.0.1 --port 0 --rate 0 --store memory --data "$dir" \
    "${args[@]}" > "$dir/engine.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do grep -q "listening on" "$dir/engine.log" && break; sleep 0.1; done
  local port
  port=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$dir/engine.log" | head -1)
  taskset -c 1 "$loadgen" --port "$port" --server-pid "$pid" --idle 0 --scenarios 1x200 \
    --loads "$loads" --warmup 2 --window 3 --windows 2 2>/dev/null |
    grep '"type":"point"' |
    node -e '
      const lines = require("fs").readFileSync(0, "utf8").trim().split("\n");
      for (const l of lines) {
        const p = JSON.parse(l);
        console.log([process.argv[1].padEnd(8), process.argv[2], String(p.offered_dps ?? "max").padStart(7),
          String(p.delivered_dps).padStart(8), p.server_cpu_us_per_delivery.toFixed(2).padStart(8),
          (p.latency_us.p50 / 1000).toFixed(2).padStart(7), (p.latency_us.p99 / 1000).toFixed(2).padStart(7)].join("  "));
      }' "$variant" "$round"
  local dropped
  dropped=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^troupe_webhook_events_dropped_total/ {print $2}')
  [ "$variant" = hanging ] && echo "          (webhook events dropped so far: ${dropped:-0})"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

echo "variant  round  offered  delivered  cpu µs/d  p50 ms  p99 ms"
for round in $(seq "$rounds"); do
  run_round none "$round"
  run_round hanging "$round"
done
