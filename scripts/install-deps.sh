#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs, with apt-get only, the Debian packages gatehouse needs, in three sets, so that running
# the gateway never pulls in what only its tests or benchmarks use:
#   run    build the binary and try it: the toolchain, the -dev libraries it links, curl and openssl
#          (the README's quick start calls them)                               (`make run`)
#   test   run + cmocka, clang with its sanitizer and libFuzzer runtimes, Node.js and the
#          end-to-end tests' npm packages, PostgreSQL (the store's tests make throwaway clusters
#          with pg_virtualenv; the postgresql service is then disabled at boot)
#                                                           (`make test`, asan, tsan, fuzz, demo)
#   bench  run + cmocka (the benchmark programs link the test kit), Node.js (token signing), wrk,
#          h2load, perf, nginx, apache2 and mod_auth_openidc; nginx and apache2 are then disabled
#          as services, since the benchmarks only run them from temporary prefixes  (`make bench*`)
# Idempotent: it asks dpkg what is already there and installs only what is missing, so the make
# targets can call it every time at almost no cost. No service is ever started by an install
# (policy-rc.d), and the services Debian enables with the packages (postgresql in the test set,
# nginx and apache2 in the bench set) are disabled at boot, every time, also when they were
# installed before.
#
# usage: scripts/install-deps.sh [--print] [run|test|bench]...     (default: test)
#   --print   print what the sets hold and what would be done, change nothing
set -euo pipefail

print=0
sets=()
for arg in "$@"; do
  case "$arg" in
    --print) print=1 ;;
    run | test | bench) sets+=("$arg") ;;
    -h | --help)
      sed -n '/^# usage:/,/^set -e/{ /^set -e/d; s/^# \{0,1\}//; p; }' "$0"
      exit 0 ;;
    *)
      echo "install-deps: unknown argument '$arg' (usage: install-deps.sh [--print] [run|test|bench]...)" >&2
      exit 2 ;;
  esac
done
[ "${#sets[@]}" -gt 0 ] || sets=(test)

run_packages=(
  build-essential cmake pkg-config git ca-certificates curl openssl
  libnghttp2-dev libssl-dev libjansson-dev libcurl4-openssl-dev libsqlite3-dev
  libpq-dev                  # the PostgreSQL store (libpq5 comes with it)
)
test_packages=(
  libcmocka-dev
  clang libclang-rt-14-dev   # libFuzzer and the sanitizer runtimes (make asan, tsan, fuzz)
  python3-h2 nghttp2-client  # HTTP/2 clients of the front end's tests (frames by hand, h2load)
  postgresql postgresql-common  # the PostgreSQL store's tests: pg_virtualenv's throwaway clusters
)
# services that the test packages install and Debian enables at boot (with a "main" cluster); the
# tests only run clusters of their own, in temporary directories
test_services=(postgresql)
bench_packages=(
  libcmocka-dev              # bench_verify and bench_decide link the test kit
  wrk nginx                  # bench/gateway.sh runs nginx in a temporary prefix
  nghttp2-client             # h2load: bench/gateway.sh's HTTP/2-over-TLS scenario
  linux-perf                 # perf stat and perf record: bench/gateway.sh --profile
  apache2 libapache2-mod-auth-openidc  # bench/apache.sh's peer, run from its own ServerRoot
)
# services that the bench packages install and Debian enables at boot; the project never uses them
bench_services=(nginx apache2 apache-htcacheclean)

want_node=0 want_npm_ci=0
packages=("${run_packages[@]}")
services=()
for set in "${sets[@]}"; do
  case "$set" in
    test) packages+=("${test_packages[@]}"); services+=("${test_services[@]}"); want_node=1; want_npm_ci=1 ;;
    bench) packages+=("${bench_packages[@]}"); services+=("${bench_services[@]}"); want_node=1 ;;
  esac
done
# Node.js runs the end-to-end tests, the real OpenID Provider (npm's oidc-provider) and the
# benchmarks' token signing. A machine may already have a newer Node.js from elsewhere; only when
# there is none do we take Debian's.
if [ "$want_node" = 1 ] && { ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; }; then
  packages+=(nodejs npm)
fi
# one of each, in order
declare -A seen=()
unique=()
for pkg in "${packages[@]}"; do
  [ -n "${seen[$pkg]:-}" ] || unique+=("$pkg")
  seen[$pkg]=1
done
packages=("${unique[@]}")

if [ "$print" = 1 ]; then
  echo "sets: ${sets[*]}"
  echo "packages: ${packages[*]}"
  [ "$want_npm_ci" = 1 ] && echo "npm: npm ci in tests/e2e"
  [ "${#services[@]}" -gt 0 ] && echo "services disabled at boot: ${services[*]}"
  exit 0
fi

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
for pkg in "${packages[@]}"; do
  installed "$pkg" || missing+=("$pkg")
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

# Debian enables postgresql, nginx and apache2 at boot when they are installed. Disable (and,
# under systemd, mask) them, whether we installed them just now or they were there before: the
# tests and benchmarks start their own instances. A service already running is left running (we
# never started it).
# GH_SYSTEMD_DIR is the directory whose presence says systemd is PID 1 (a test points it elsewhere).
disable_services() {
  local systemd=0 svc
  [ -d "${GH_SYSTEMD_DIR:-/run/systemd/system}" ] && systemd=1
  for svc in "${services[@]}"; do
    case "$svc" in
      apache-htcacheclean) installed apache2 || continue ;;
      *) installed "$svc" || continue ;;
    esac
    if [ "$(id -u)" -ne 0 ]; then
      echo "install-deps: run as root to disable the $svc service at boot" >&2
      continue
    fi
    if [ "$systemd" = 1 ]; then
      systemctl disable --quiet "$svc" 2>/dev/null || true
      systemctl mask --quiet "$svc"
    else
      # systemd is not PID 1 (a container, sysvinit): the rc links decide what starts at boot
      update-rc.d "$svc" disable >/dev/null
      if command -v systemctl >/dev/null 2>&1; then
        # and the unit's links, should this system boot with systemd one day
        systemctl disable --quiet "$svc" >/dev/null 2>&1 || true
        systemctl mask --quiet "$svc" >/dev/null 2>&1 || true
      fi
    fi
    echo "install-deps: the $svc service is disabled at boot (undo: systemctl unmask $svc; systemctl enable $svc)"
  done
}
[ "${#services[@]}" -gt 0 ] && disable_services

# npm packages of the end-to-end tests, exactly as locked; reinstalled only when the lock changed.
if [ "$want_npm_ci" = 1 ]; then
  e2e="$(dirname "$0")/../tests/e2e"
  if [ ! -f "$e2e/node_modules/.package-lock.json" ] ||
     [ "$e2e/package-lock.json" -nt "$e2e/node_modules/.package-lock.json" ]; then
    echo "install-deps: installing the end-to-end tests' npm packages"
    npm ci --prefix "$e2e" --no-audit --no-fund --loglevel=error
  fi
fi
exit 0
