#!/usr/bin/env bash
# Fresh machine to test results: install, build everything, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
cd build
ctest --output-on-failure --timeout 300 -j2
# CI also fuzzes the frame decoder and the operation parser, a minute each (fuzz/README.md).
if [ -n "${CI:-}" ]; then
  cd .. && bash scripts/fuzz.sh 60
fi
