#!/usr/bin/env bash
# Fresh machine to running engine: install, build, start on port 8080 with embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh --target troupe
exec ./build/troupe "$@"
