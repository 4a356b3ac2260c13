#!/usr/bin/env bash
# Runs every test suite and prints one closing line "N passed, M failed".
# Usage: scripts/run-tests.sh BUILD_DIR [ASAN_BUILD_DIR]   (inside scripts/with-postgres.sh)
set -uo pipefail
build=$(cd "${1:?build dir}" && pwd)
asan=${2:+$(cd "$2" && pwd)}
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)
[ -n "${KILN_TEST_POSTGRES:-}" ] || { echo "run-tests: KILN_TEST_POSTGRES is not set (run through scripts/with-postgres.sh)" >&2; exit 1; }

passed=0
failed=0
failed_suites=()
log=$(mktemp)

count_ctest() {  # reads ctest's "NN% tests passed, F tests failed out of T"
  local line total bad
  line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1)
  if [ -z "$line" ]; then failed=$((failed + 1)); return; fi
  bad=$(sed -E 's/.*passed, ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
  total=$(sed -E 's/.*failed out of ([0-9]+).*/\1/' <<<"$line")
  passed=$((passed + total - bad))
  failed=$((failed + bad))
}

count_plain() {  # reads a closing "N passed, M failed" line
  local line
  line=$(grep -E '^[A-Za-z:]*[ ]*[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
  if [ -z "$line" ]; then failed=$((failed + 1)); return; fi
  passed=$((passed + $(sed -E 's/^[^0-9]*([0-9]+) passed.*/\1/' <<<"$line")))
  failed=$((failed + $(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")))
}

count_node() {  # node --test's "# pass N" / "# fail M"
  local p f
  p=$(grep -E '^(# |ℹ )pass [0-9]+' "$log" | tail -n 1 | grep -oE '[0-9]+$')
  f=$(grep -E '^(# |ℹ )fail [0-9]+' "$log" | tail -n 1 | grep -oE '[0-9]+$')
  if [ -z "$p" ]; then failed=$((failed + 1)); return; fi
  passed=$((passed + p)); failed=$((failed + ${f:-0}))
}

suite() {  # suite NAME COUNTER COMMAND...
  local name=$1 counter=$2; shift 2
  echo "==> $name"
  "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  $counter
  [ "$rc" -eq 0 ] || failed_suites+=("$name")
}

fresh_pg_db() {  # prints a URI of a new empty PostgreSQL database
  local name="kiln_it_$RANDOM$RANDOM"
  psql "$KILN_TEST_POSTGRES" -qAt -c "CREATE DATABASE $name" >/dev/null || return 1
  echo "${KILN_TEST_POSTGRES%/*}/$name"
}

suite "unit tests (release; SQLite and PostgreSQL)" count_ctest \
  ctest --test-dir "$build" --output-on-failure -j "$jobs" --timeout 300
if [ -n "$asan" ]; then
  suite "unit tests (ASan + UBSan)" count_ctest \
    env ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$asan" --output-on-failure -j "$jobs" --timeout 600
fi
if [ -f "$root/tests/cli/run.sh" ]; then
  suite "CLI end-to-end (SQLite and a server URL)" count_plain bash "$root/tests/cli/run.sh" "$build"
  suite "CLI end-to-end (PostgreSQL)" count_plain \
    bash "$root/tests/cli/run.sh" "$build" "$root"/tests/cli/postgres/*.t
fi

# Crash safety of data commits and merges: every fault point and random kill -9s.
if [ -f "$root/tests/data/crash_test.sh" ]; then
  suite "data crash safety (fault points and kill -9)" count_plain \
    bash "$root/tests/data/crash_test.sh" "$build"
fi
if [ -f "$root/tests/stream/big_download.sh" ]; then
  suite "streamed downloads and multipart upload (200 MB, kiln server)" count_plain \
    bash "$root/tests/stream/big_download.sh" "$build"
fi

# The third-party `mlflow` npm client against kiln server, on both backends.
if (cd "$root/tests/npm" && npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1); then
  suite "npm mlflow client (SQLite)" count_node \
    env KILN_BIN="$build/bin/kiln" node --test "$root/tests/npm/"
  pg_uri=$(fresh_pg_db)
  suite "npm mlflow client (PostgreSQL)" count_node \
    env KILN_BIN="$build/bin/kiln" KILN_STORE="$pg_uri" node --test "$root/tests/npm/"
else
  echo "npm ci failed in tests/npm" >&2
  failed=$((failed + 1)); failed_suites+=("npm install")
fi

rm -f "$log"
echo
if [ ${#failed_suites[@]} -gt 0 ]; then echo "failing suites: ${failed_suites[*]}"; fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ ${#failed_suites[@]} -eq 0 ]
