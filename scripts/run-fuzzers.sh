#!/usr/bin/env bash
# Runs every libFuzzer target in FUZZ_BUILD for SECONDS each, starting from fuzz/corpus/<name>/
# seeds (copied, so the committed corpus is never written). Exits non-zero on the first crash.
set -euo pipefail
build=$(cd "${1:?fuzz build dir}" && pwd)  # absolute: each fuzzer runs in its own folder
seconds=${2:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
status=0
for fuzzer in "$build"/*_fuzz; do
  [ -x "$fuzzer" ] || continue
  name=$(basename "$fuzzer" _fuzz)
  work=$(mktemp -d)
  [ -d "$root/fuzz/corpus/$name" ] && cp -r "$root/fuzz/corpus/$name/." "$work/"
  echo "==> fuzzing $name for ${seconds}s"
  if ! (cd "$work" && "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
          -print_final_stats=1 "$work" 2>&1 | tail -n 15); then
    echo "fuzzer $name failed (a crash, a leak or a time-out); its input and output are in $work" >&2
    status=1
    continue
  fi
  rm -rf "$work"
done
exit $status
