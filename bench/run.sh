#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs the benchmarks of a normal (RelWithDebInfo) build and prints their tables together with the
# command and the machine, so a pasted result says where it came from. `make bench` calls it.
# Extra arguments go to bench_verify (e.g. `bench/run.sh build --rounds 20 RS256 ES256`).
#
# usage: bench/run.sh BUILD_DIR [bench_verify options]
set -euo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: $0 BUILD_DIR [bench_verify options]" >&2
    exit 2
fi
build=$1
shift
binary=$build/bench/bench_verify
if [[ ! -x $binary ]]; then
    echo "run.sh: $binary is missing; build first (make build)" >&2
    exit 2
fi

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
echo "# machine: $(nproc) CPUs, ${cpu:-unknown CPU}, $(openssl version 2>/dev/null || echo 'openssl CLI missing')"
echo "# build: $(grep -s '^CMAKE_BUILD_TYPE:' "$build/CMakeCache.txt" | cut -d= -f2 || true)"
echo "\$ $binary $*"
"$binary" "$@"
