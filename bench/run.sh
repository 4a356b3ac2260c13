#!/usr/bin/env bash
# Runs kiln's benchmarks on a build that `make bench` has already made; builds nothing.
#   bash bench/run.sh BUILD_DIR [extra tracking_bench flags]
# `make bench` calls it inside scripts/with-postgres.sh, so KILN_TEST_POSTGRES names a throwaway
# PostgreSQL server and both backends are measured. Without it, only SQLite is.
# Results go to stdout only (they describe one machine at one moment; nothing is committed).
set -euo pipefail
BUILD=${1:?usage: bash bench/run.sh BUILD_DIR [tracking_bench flags]}
shift
BIN="$BUILD/tracking_bench"
[ -x "$BIN" ] || { echo "bench/run.sh: $BIN not found; build with -DKILN_BENCH=ON (make bench does)" >&2; exit 1; }

BACKENDS=sqlite
if [ -n "${KILN_TEST_POSTGRES:-}" ]; then
  BACKENDS=sqlite,postgres
else
  echo "bench/run.sh: KILN_TEST_POSTGRES is not set; measuring SQLite only (make bench sets it)" >&2
fi

echo "== tracking: MLflow REST on kiln vs the same work in SQL (issue 2)"
echo "   $(uname -srm), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
# The program's defaults: 1,000 and 100,000 runs, 50 iterations (extra flags, e.g. --quick, win).
"$BIN" --backends "$BACKENDS" "$@"
