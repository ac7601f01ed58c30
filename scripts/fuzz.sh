#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang into ./build-fuzz and runs each for a
# bounded time, starting from the seed corpus in fuzz/corpus/. Exits non-zero when a target
# crashes, leaks, times out or trips a sanitizer; the input that did it is kept in
# build-fuzz/artifacts/ (reproduce with: build-fuzz/fuzz_<target> <that file>).
#   bash scripts/fuzz.sh [seconds per target, default 60]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"

# clang 14 is Debian 12's clang; libclang-rt-14-dev holds libFuzzer and the sanitizer runtimes.
bash scripts/install-deps.sh clang libclang-rt-14-dev cmake make libmsgpack-cxx-dev

cmake -S fuzz -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$(nproc)"

status=0
for target in frame operation; do
  # New inputs go to build-fuzz/corpus/; the checked-in seeds are only read.
  work="build-fuzz/corpus/$target"
  mkdir -p "$work" build-fuzz/artifacts build-fuzz/logs
  log="build-fuzz/logs/fuzz_$target.log"
  echo "== fuzz_$target: ${seconds}s"
  if ! "build-fuzz/fuzz_$target" "$work" "fuzz/corpus/$target" \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="build-fuzz/artifacts/${target}-" >"$log" 2>&1; then
    status=1
    echo "fuzz_$target FAILED; the end of its log ($log):"
    tail -n 60 "$log"
    continue
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  seeds=$(find "fuzz/corpus/$target" -type f | wc -l)
  echo "fuzz_$target: ok, ${runs} executions (${rate}/s), ${seeds} seeds, $(grep -c . <(ls "$work")) new inputs kept"
done
exit "$status"
