#!/usr/bin/env bash
# Installs everything Troupe needs to build, run and test, from Debian's packages only.
# Idempotent: a second run installs nothing new. With arguments, installs those packages
# instead (scripts/fuzz.sh uses it for clang, scripts/test.sh for chromium).
set -euo pipefail

packages=(
  g++ cmake make pkg-config ca-certificates
  libcaf-dev                  # CAF 0.17.6: actors
  libboost-dev libboost-system-dev libboost-program-options-dev  # Beast / Asio 1.74
  libmsgpack-cxx-dev          # MessagePack codec
  libgtest-dev                # tests
  zlib1g-dev nlohmann-json3-dev  # reading the editing traces (tests, benchmarks)
  libjwt-dev                  # connection tokens: HS256 JWTs verified with libjwt
  libssl-dev                  # TLS (--tls-cert): OpenSSL under Asio's ssl::stream
  libsqlite3-dev              # the durable embedded store (--data)
  libhiredis-dev              # the cluster (--redis): hiredis, driven by Asio
  liburing-dev                # the fan-out's writes batched through io_uring (--io-uring)
  redis-server                # the cluster's Redis 7 (the cluster tests start their own)
  clang-format                # the one C++ style (.clang-format; scripts/format.sh, the test `format`)
  nodejs                      # the JavaScript client and its tests; npm installs their packages
  php-cli                     # the recommendations seed app's backend (examples/recommendations, php -S)
)
# Debian 12 ships npm as its own package; Node.js from elsewhere (NodeSource) brings its own
# npm, which Debian's would conflict with.
command -v npm >/dev/null 2>&1 || packages+=(npm)
if (($#)); then
  packages=("$@")
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
