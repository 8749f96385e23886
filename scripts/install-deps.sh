#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs, with apt-get only, the Debian packages gatehouse needs to build, test and benchmark.
# Idempotent: it asks dpkg what is already there and installs only what is missing, so `make run`
# and `make test` can call it every time at almost no cost. Later features add their packages here.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git ca-certificates
  libh2o-evloop-dev libssl-dev libjansson-dev libcurl4-openssl-dev libsqlite3-dev
  libcmocka-dev
  clang libclang-rt-14-dev   # libFuzzer and the sanitizer runtimes
  wrk nginx                  # benchmarks only (bench/gateway.sh runs nginx in a temporary prefix)
  apache2 libapache2-mod-auth-openidc  # bench/apache.sh's peer, run from its own ServerRoot
)

# Node.js runs the end-to-end tests and the real OpenID Provider (npm's oidc-provider). A machine
# may already have a newer Node.js from elsewhere; only when there is none do we take Debian's.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]}; run as root (or install them) first" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Packages such as nginx start their service when installed (on port 80): the project only runs
  # them itself, on loopback, in temporary prefixes. Refuse service starts during the install.
  policy=/usr/sbin/policy-rc.d
  made_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    made_policy=1
  fi
  status=0
  apt-get install -y -qq --no-install-recommends "${missing[@]}" || status=$?
  [ "$made_policy" = 1 ] && rm -f "$policy"
  [ "$status" = 0 ] || exit "$status"
fi

# npm packages of the end-to-end tests, exactly as locked; reinstalled only when the lock changed.
e2e="$(dirname "$0")/../tests/e2e"
if [ ! -f "$e2e/node_modules/.package-lock.json" ] ||
   [ "$e2e/package-lock.json" -nt "$e2e/node_modules/.package-lock.json" ]; then
  echo "install-deps: installing the end-to-end tests' npm packages"
  npm ci --prefix "$e2e" --no-audit --no-fund --loglevel=error
fi
