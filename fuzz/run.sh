#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs every libFuzzer target of a GH_FUZZ build for a fixed time, so `make fuzz` is one command
# for developers and CI. Each target works on its own corpus inside the build directory, seeded
# from fuzz/seeds/<target>/ (which is only read, so the repository never collects generated
# inputs) and kept between runs so coverage accumulates; crash, leak, timeout and OOM reproducers
# land inside the build directory too. Prints the executions of each target and exits non-zero
# when any target found a problem.
#
# usage: fuzz/run.sh BUILD_DIR SECONDS
set -euo pipefail

if [[ $# -ne 2 || ! "$2" =~ ^[0-9]+$ || "$2" -eq 0 ]]; then
    echo "usage: $0 BUILD_DIR SECONDS" >&2
    exit 2
fi
build=$(cd "$1" && pwd)
seconds=$2
seeds=$(cd "$(dirname "$0")" && pwd)/seeds

# target:max_len. Tokens are capped at 16 KiB by SPEC §3, so 20000 bytes also covers the cap;
# base64url needs no long inputs to reach every branch; a JWK Set with a few large RSA keys does;
# an upstream's head or chunked body needs a little more than the decoder's 16 KiB cap on all
# trailers together (8192 on one line), so that refusing longer ones is reachable too; a request
# head twice the 2048 bytes fuzz_h1request allows it; an HTTP/2 session needs room for a few
# frames past its 8 KiB header-list limit.
targets=(fuzz_base64url:4096 fuzz_jws_verify:20000 fuzz_jwks:32768 fuzz_h1response:20000
    fuzz_h1request:4096 fuzz_h2session:20000)

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=()
summary=()
for entry in "${targets[@]}"; do
    target=${entry%%:*}
    max_len=${entry##*:}
    binary=$build/fuzz/$target
    corpus=$build/fuzz-corpus/$target
    artifacts=$build/fuzz-artifacts/$target
    log=$build/fuzz-logs/$target.log
    if [[ ! -x $binary ]]; then
        echo "run.sh: $binary is missing; build with -DGH_FUZZ=ON first" >&2
        exit 2
    fi
    mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
    # -n: a seed never overwrites what the corpus has learnt under the same name
    cp -n "$seeds/$target"/* "$corpus"/ 2>/dev/null || true

    echo "== $target: ${seconds}s, corpus $corpus"
    touch "$artifacts/.started" # reproducers of this run are the files newer than this
    status=0
    "$binary" -max_total_time="$seconds" -max_len="$max_len" -timeout=25 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -n 1 || true)
    found=$(find "$artifacts" -type f -newer "$artifacts/.started" \
        \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | sort)
    if [[ $status -ne 0 || -n $found ]]; then
        failed+=("$target")
        echo "!! $target failed (exit $status); log $log"
        grep -E 'ERROR|SUMMARY|fuzz_[a-z0-9_]+: |Test unit written' "$log" | head -n 20 || true
        summary+=("$(printf '%-16s %12s executions  %-10s FAILED' "$target" "${runs:-?}" "$cov")")
    else
        summary+=("$(printf '%-16s %12s executions  %-10s ok' "$target" "${runs:-?}" "$cov")")
    fi
done

echo
echo "== fuzz summary (${seconds}s per target, logs in $build/fuzz-logs)"
printf '%s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzzers with findings: ${failed[*]} (reproducers in $build/fuzz-artifacts)" >&2
    exit 1
fi
