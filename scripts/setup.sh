#!/usr/bin/env bash
# Installs every Debian package that kiln's build, tests, fuzzers, benchmarks and demo need.
# Idempotent and quiet when everything is already there. Safe to run as root or with sudo.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libboost-dev libboost-system-dev libsimdjson-dev nlohmann-json3-dev libfast-float-dev
  libyaml-cpp-dev libsqlite3-dev sqlite3 libpq-dev postgresql postgresql-client
  libssl-dev libxxhash-dev libzstd-dev libcli11-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev libcurl4-openssl-dev curl
  clang libclang-rt-14-dev clang-format clang-tidy
  nodejs npm wrk python3 git-lfs
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs/npm may come from outside Debian's archive on some images: accept a working node+npm.
if command -v node >/dev/null && command -v npm >/dev/null; then
  filtered=()
  for p in "${missing[@]}"; do [[ "$p" == nodejs || "$p" == npm ]] || filtered+=("$p"); done
  missing=("${filtered[@]}")
fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
