# SPDX-License-Identifier: Apache-2.0
# The front door: every target installs what is missing (scripts/install-deps.sh), configures CMake
# once per build flavour and builds. `make run` and `make test` are the two commands of the README.
BUILD       ?= build
ASAN_BUILD  ?= build-asan
FUZZ_BUILD  ?= build-fuzz
TSAN_BUILD  ?= build-tsan
# the tests that run threads: what ThreadSanitizer is for
TSAN_TESTS  ?= test_oidc_provider|test_snapshot|test_ratelimit|test_admin_http|test_mockidp|test_loop|test_resolve|test_sock
JOBS        ?= $(shell nproc)
FUZZ_SECONDS ?= 60
SOAK_MINUTES ?= 10
ARGS        ?=
# what `make run` keeps (the store and the admin token), ignored by git
DATA_DIR    ?= data

.PHONY: all deps deps-run deps-test deps-bench gatehouse build build-all run test unit e2e demo soak asan tsan fuzz bench bench-gateway bench-apache format clean

all: build

# the three dependency sets of scripts/install-deps.sh: run (the binary), test (run + what the tests,
# sanitizers and fuzzers need), bench (run + wrk, nginx, apache2; those services disabled at boot)
deps: deps-test
deps-run:
	@bash scripts/install-deps.sh run
deps-test:
	@bash scripts/install-deps.sh test
deps-bench:
	@bash scripts/install-deps.sh bench

# configured with the unit tests and benchmarks only when the target asking for it builds them, so
# `make run` needs no cmocka; build-all switches them on in a build first configured without
$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGH_BUILD_TESTS=$(GH_BUILD_TESTS)

# the binary alone: what `make run` builds
gatehouse: GH_BUILD_TESTS = OFF
gatehouse: deps-run $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS) --target gatehouse

# the binary, the unit tests and the benchmark programs
build-all: GH_BUILD_TESTS = ON
build-all: $(BUILD)/CMakeCache.txt
	@grep -q '^GH_BUILD_TESTS:BOOL=ON' $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) -DGH_BUILD_TESTS=ON
	cmake --build $(BUILD) -j $(JOBS)

build: deps-test build-all

run: gatehouse
	$(BUILD)/gatehouse serve --data-dir $(DATA_DIR) $(ARGS)

unit: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

e2e: build
	GATEHOUSE_BIN=$(abspath $(BUILD))/gatehouse npm test --prefix tests/e2e

test: unit e2e

# a real OpenID Provider, an upstream and gatehouse, configured with the CLI: see tests/e2e/demo.mjs
demo: build
	GATEHOUSE_BIN=$(abspath $(BUILD))/gatehouse node tests/e2e/demo.mjs

# mixed traffic, IdP key rotations and configuration changes for SOAK_MINUTES with gatehouse's RSS
# sampled; not part of `make test`: see tests/soak/README.md
soak: build
	GATEHOUSE_BIN=$(abspath $(BUILD))/gatehouse node tests/soak/soak.mjs --minutes $(SOAK_MINUTES)

$(ASAN_BUILD)/CMakeCache.txt:
	CC=clang cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DGH_SANITIZE=ON

# the unit tests, then the end-to-end suites of the data plane, the admin API, serve's listeners
# and data directory, the operator's flows and the providers against the sanitized binary (the
# load proofs stay with the optimized build: ASan's slowness is not theirs)
ASAN_E2E ?= gateway.test.mjs upstream.test.mjs gateway-proofs.test.mjs admin.test.mjs metrics.test.mjs \
            serve.test.mjs operator.test.mjs providers.test.mjs issuers.test.mjs \
            gateway-paths.test.mjs frontend-http1.test.mjs frontend-h2.test.mjs \
            frontend-peers.test.mjs admin-stall.test.mjs cluster.test.mjs
asan: deps-test $(ASAN_BUILD)/CMakeCache.txt
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS)
	cd tests/e2e && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  GATEHOUSE_BIN=$(abspath $(ASAN_BUILD))/gatehouse node --test --test-concurrency=1 $(ASAN_E2E)

$(TSAN_BUILD)/CMakeCache.txt:
	CC=clang cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DGH_TSAN=ON

tsan: deps-test $(TSAN_BUILD)/CMakeCache.txt
	cmake --build $(TSAN_BUILD) -j $(JOBS)
	cd $(TSAN_BUILD) && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	  ctest --output-on-failure -R '$(TSAN_TESTS)'

$(FUZZ_BUILD)/CMakeCache.txt:
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DGH_FUZZ=ON

fuzz: deps-test $(FUZZ_BUILD)/CMakeCache.txt
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	bash fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

bench: deps-bench build-all
	bash bench/run.sh $(BUILD)

# gatehouse against a plain nginx reverse proxy, with wrk and h2load, on loopback (bench/README.md);
# BENCH_ARGS go to the script (e.g. BENCH_ARGS="--gatehouse /tmp/gatehouse-before --profile prof")
bench-gateway: deps-bench build-all
	bash bench/gateway.sh $(BUILD) $(BENCH_ARGS)

# the same beside Apache + mod_auth_openidc; each proxy on half the cores, wrk and the upstream on
# the others, so the proxies are measured and not the load generator (bench/apache/README.md)
bench-apache: deps-bench build-all
	bash bench/apache.sh $(BUILD) --pin

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)
