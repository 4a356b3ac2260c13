# kiln's entry points. `make demo` and `make test` install what they need (scripts/setup.sh).
SHELL := /bin/bash
JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
CMAKE_GEN := $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")
# ccache: hash paths relative to the checkout, so clones in other folders (CI) share the cache.
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := true

.PHONY: all setup build build-kiln build-asan test unit-test asan-test tsan-test demo fuzz bench bench-data format lint clean

all: build

setup:
	@bash scripts/setup.sh

$(BUILD)/build.ninja $(BUILD)/Makefile:
	@bash scripts/setup.sh
	cmake -S . -B $(BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

build: setup $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

# Only the kiln binary (what the demo needs), not the tests and benchmarks.
build-kiln: setup $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS) --target kiln

build-asan: setup
	cmake -S . -B $(ASAN_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DKILN_SANITIZE=ON -DKILN_BENCH=OFF >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)

# Every test: unit tests (release and ASan/UBSan builds) and the end-to-end tests, each against
# SQLite and a throwaway PostgreSQL cluster that scripts/with-postgres.sh starts and stops.
test: build build-asan
	bash scripts/with-postgres.sh bash scripts/run-tests.sh $(BUILD) $(ASAN_BUILD)

unit-test: build
	bash scripts/with-postgres.sh ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

asan-test: build-asan
	bash scripts/with-postgres.sh ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS)

# The unit tests under ThreadSanitizer (races, lock order): slower than the ASan run, so not in
# CI; run it before resolving work that touches threads.
tsan-test: setup
	cmake -S . -B $(TSAN_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_TSAN=ON -DKILN_BENCH=OFF >/dev/null
	cmake --build $(TSAN_BUILD) -j $(JOBS)
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" bash scripts/with-postgres.sh ctest --test-dir $(TSAN_BUILD) --output-on-failure -j $(JOBS)

demo: build-kiln
	bash scripts/demo.sh $(BUILD)/bin/kiln

# libFuzzer targets built with clang; each runs FUZZ_SECONDS (60 in CI, 600 before resolving).
fuzz: setup
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_FUZZ=ON -DKILN_TESTS=OFF -DKILN_BENCH=OFF >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	bash scripts/run-fuzzers.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

bench: build
	bash scripts/with-postgres.sh bash bench/run.sh $(BUILD)

# The dataset benchmark: a 500 MB CSV and three kinds of 1% change, kiln beside git-lfs and git.
bench-data: build
	$(BUILD)/data_bench --kiln $(BUILD)/bin/kiln

format:
	find src tests bench fuzz -name '*.h' -o -name '*.cc' | xargs clang-format -i

lint: build
	find src -name '*.cc' | xargs clang-tidy -p $(BUILD) --quiet

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)
