#!/usr/bin/env bash
# Fresh machine to test results: install, build everything, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/install-deps.sh chromium  # the browser tests (tests/browser) drive Debian's Chromium
bash scripts/js-deps.sh
bash scripts/build.sh
# CI also fuzzes the frame decoder and the operation parser, a minute each (fuzz/README.md),
# before the tests so that ctest's summary closes the run.
if [ -n "${CI:-}" ]; then
  bash scripts/fuzz.sh 60
fi
cd build
ctest --output-on-failure --timeout 300 -j2
