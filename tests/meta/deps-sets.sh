#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Running gatehouse installs only what running needs (issue 10, item 10): scripts/install-deps.sh has
# three sets (run, test, bench); the run set holds no benchmark peer, load tool, compiler of the
# tests nor database server; the test set disables postgresql at boot and the bench set nginx and
# apache2, every time (also when they were installed before), through systemctl under systemd and
# update-rc.d without it; `make run` builds the
# gatehouse target alone, which configures without cmocka. Changes nothing on the machine: the
# service commands are stubs on PATH. Run by CTest (`deps_sets`).
set -euo pipefail
top=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
script="$top/scripts/install-deps.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gh-deps-sets.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "deps-sets: FAIL: $*"; failures=$((failures + 1)); }
has() { [[ " $1 " == *" $2 "* ]]; }

# 1. the sets, as --print shows them
packages_of() { bash "$script" --print "$@" | sed -n 's/^packages: //p'; }
run_set=$(packages_of run) || { fail "install-deps.sh --print run failed"; run_set=""; }
test_set=$(packages_of test) || { fail "install-deps.sh --print test failed"; test_set=""; }
bench_set=$(packages_of bench) || { fail "install-deps.sh --print bench failed"; bench_set=""; }
[ -n "$run_set" ] || fail "--print run lists no packages"
for pkg in wrk nginx apache2 libapache2-mod-auth-openidc clang libclang-rt-14-dev libcmocka-dev nodejs npm \
           postgresql postgresql-common; do
  has "$run_set" "$pkg" && fail "the run set holds $pkg"
done
for pkg in build-essential cmake pkg-config libnghttp2-dev libssl-dev libjansson-dev \
           libcurl4-openssl-dev libsqlite3-dev libpq-dev curl openssl; do
  has "$run_set" "$pkg" || fail "the run set lacks $pkg"
  has "$test_set" "$pkg" || fail "the test set lacks $pkg (test includes run)"
  has "$bench_set" "$pkg" || fail "the bench set lacks $pkg (bench includes run)"
done
for pkg in libcmocka-dev clang libclang-rt-14-dev postgresql postgresql-common; do
  has "$test_set" "$pkg" || fail "the test set lacks $pkg"
done
for pkg in wrk nginx apache2 libapache2-mod-auth-openidc; do
  has "$test_set" "$pkg" && fail "the test set holds $pkg"
  has "$bench_set" "$pkg" || fail "the bench set lacks $pkg"
done
# (the output first, then grep: grep -q stops reading at its match, and under pipefail the script's
# SIGPIPE on its next line would fail the check at random)
print_test=$(bash "$script" --print test) print_run=$(bash "$script" --print run)
grep -q '^npm: ' <<<"$print_test" || fail "the test set does not install the e2e npm packages"
grep -q '^npm: ' <<<"$print_run" && fail "the run set installs npm packages"
grep -q '^services' <<<"$print_run" && fail "the run set touches services"
services=$(bash "$script" --print bench | sed -n 's/^services disabled at boot: //p')
for svc in nginx apache2; do has "$services" "$svc" || fail "the bench set leaves $svc enabled at boot"; done
services=$(bash "$script" --print test | sed -n 's/^services disabled at boot: //p')
has "$services" postgresql || fail "the test set leaves postgresql enabled at boot"

# 2. what the test and bench sets really do to services, with every package already installed (so
#    no apt-get runs) and systemctl, update-rc.d, dpkg-query and npm replaced by stubs that log
stubs="$tmp/bin" && mkdir -p "$stubs"
calls="$tmp/calls"
for cmd in systemctl update-rc.d npm apt-get; do
  printf '#!/bin/sh\necho "%s $*" >> "%s"\n' "$cmd" "$calls" > "$stubs/$cmd"
done
printf '#!/bin/sh\nprintf "install ok installed"\n' > "$stubs/dpkg-query"
printf '#!/bin/sh\necho 0\n' > "$stubs/id"   # as root, whoever runs the test
chmod 755 "$stubs"/*
with_stubs() { : > "$calls"; PATH="$stubs:$PATH" GH_SYSTEMD_DIR="$1" bash "$script" "${@:2}" > "$tmp/out" 2>&1; }

mkdir -p "$tmp/systemd-running"
for round in 1 2; do  # the second round: already disabled, already installed; same result
  for set in bench test; do
    case "$set" in bench) set_services="nginx apache2" ;; test) set_services="postgresql" ;; esac
    with_stubs "$tmp/no-systemd" "$set" || fail "$set without systemd exited non-zero: $(cat "$tmp/out")"
    for svc in $set_services; do
      grep -qx "update-rc.d $svc disable" "$calls" || fail "round $round, $set, no systemd: update-rc.d $svc disable not run"
    done
    with_stubs "$tmp/systemd-running" "$set" || fail "$set under systemd exited non-zero: $(cat "$tmp/out")"
    for svc in $set_services; do
      grep -qx "systemctl disable --quiet $svc" "$calls" || fail "round $round, $set, systemd: $svc not disabled"
      grep -qx "systemctl mask --quiet $svc" "$calls" || fail "round $round, $set, systemd: $svc not masked"
    done
    grep -q '^apt-get' "$calls" && fail "apt-get ran although every package is installed"
    grep -q 'start\|restart\|reload' "$calls" && fail "a service was started: $(cat "$calls")"
  done
done
with_stubs "$tmp/systemd-running" run || fail "run exited non-zero: $(cat "$tmp/out")"
[ -s "$calls" ] && fail "the run set called: $(cat "$calls")"

# 3. make run builds the gatehouse target alone and asks for the run set only
plan=$(make -n -C "$top" run BUILD="$tmp/build" 2>&1) || fail "make -n run failed: $plan"
grep -q 'install-deps.sh run' <<<"$plan" || fail "make run does not install the run set"
grep -qE 'install-deps.sh( .*)? (test|bench)|install-deps.sh$' <<<"$plan" && fail "make run installs more than the run set"
builds=$(grep -E 'cmake --build' <<<"$plan" || true)
[ -n "$builds" ] || fail "make run builds nothing"
while IFS= read -r line; do
  [ -z "$line" ] || [[ "$line" == *"--target gatehouse"* ]] || fail "make run builds more than gatehouse: $line"
done <<<"$builds"
grep -q 'GH_BUILD_TESTS=OFF' <<<"$plan" || fail "make run configures the unit tests and benchmarks"

# 4. configured as make run does, the build has no test or benchmark target and needs no cmocka:
#    pkg-config sees every .pc file of the machine but cmocka's
pcdir="$tmp/pkgconfig" && mkdir -p "$pcdir"
IFS=: read -r -a pc_path <<<"$(pkg-config --variable pc_path pkg-config)"
for d in "${pc_path[@]}"; do
  [ -d "$d" ] || continue
  for pc in "$d"/*.pc; do
    [ -e "$pc" ] && [ "$(basename "$pc")" != cmocka.pc ] && ln -sf "$pc" "$pcdir/"
  done
done
if ! PKG_CONFIG_LIBDIR="$pcdir" cmake -S "$top" -B "$tmp/build" -DGH_BUILD_TESTS=OFF > "$tmp/cmake.log" 2>&1; then
  fail "configuring with GH_BUILD_TESTS=OFF and no cmocka failed: $(tail -5 "$tmp/cmake.log")"
else
  targets=$(cmake --build "$tmp/build" --target help 2>/dev/null)
  grep -q 'gatehouse$' <<<"$targets" || fail "no gatehouse target"
  grep -qE 'test_|bench_' <<<"$targets" && fail "GH_BUILD_TESTS=OFF still has test or bench targets"
fi

[ "$failures" = 0 ] || { echo "deps-sets: $failures failure(s)"; exit 1; }
echo "deps-sets: run needs only the build, tests and benchmarks bring their own; their services stay off"
