#!/usr/bin/env bash
# Installs everything Troupe needs to build and test, from Debian's packages only.
# Idempotent: a second run installs nothing new. With arguments, installs those packages
# instead (scripts/fuzz.sh uses it for clang).
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
)
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
