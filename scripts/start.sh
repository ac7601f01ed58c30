#!/usr/bin/env bash
# Fresh machine to running engine: install, build, start on port 8080 with embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# The demo page at / loads the client's one dependency, @msgpack/msgpack, from clients/js's
# node_modules (web/vendor/msgpack links to it).
bash scripts/js-deps.sh --runtime
bash scripts/build.sh --target troupe
exec ./build/troupe "$@"
