#!/usr/bin/env bash
# Starts the recommendations seed app: the PHP backend (php -S) and the engine serving the
# shop page, wired together, until Ctrl-C. Build first (see README.md):
#   bash examples/recommendations/run.sh [--port 8080] [--backend-port 8090] [--data DIR]
# The secret and the API key are generated for this run unless BACKEND_SECRET and
# ENGINE_API_KEY are set.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

port=8080
backend_port=8090
data=""
while (($#)); do
  case "$1" in
    --port) port="$2"; shift 2 ;;
    --backend-port) backend_port="$2"; shift 2 ;;
    --data) data="$2"; shift 2 ;;
    *) echo "usage: $0 [--port N] [--backend-port N] [--data DIR]" >&2; exit 2 ;;
  esac
done
data="${data:-$(mktemp -d "${TMPDIR:-/tmp}/troupe-recommendations.XXXXXX")}"
mkdir -p "$data/engine" "$data/backend"

command -v php >/dev/null || { echo "php is missing: bash scripts/install-deps.sh installs php-cli" >&2; exit 1; }
troupe="${TROUPE_BINARY:-$repo/build/troupe}"
[ -x "$troupe" ] || { echo "no engine at $troupe: bash scripts/build.sh --target troupe" >&2; exit 1; }
[ -e "$repo/clients/js/node_modules/@msgpack/msgpack" ] || bash "$repo/scripts/js-deps.sh" --runtime

random_hex() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }
export BACKEND_SECRET="${BACKEND_SECRET:-$(random_hex)}"
export ENGINE_API_KEY="${ENGINE_API_KEY:-$(random_hex)}"
export ENGINE_URL="http://127.0.0.1:$port"
export DATA_DIR="$data/backend"

pids=()
stop() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap stop EXIT INT TERM

php -S "127.0.0.1:$backend_port" "$here/backend.php" &
pids+=($!)
"$troupe" --host 127.0.0.1 --port "$port" --data "$data/engine" --web "$here/web" \
  --api-key "$ENGINE_API_KEY" \
  --backend "http://127.0.0.1:$backend_port" --backend-secret "$BACKEND_SECRET" &
pids+=($!)

cat <<MSG

The shop is at (open the first twice: two tabs of one user, and the second beside them)
  http://127.0.0.1:$port/?user=alice
  http://127.0.0.1:$port/?user=bob
The backend (php -S) is on 127.0.0.1:$backend_port; its model and webhook log are in
  $data/backend/   (model.json, events.log)
Ctrl-C stops both.

MSG
wait -n "${pids[@]}"
