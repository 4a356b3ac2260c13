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
          -print_final_stats=1 "$work" >"$work.log" 2>&1); then
    # The cause (the target's own message, the sanitizer's report) comes before the stack.
    grep -m 8 -E -- '->|ERROR|runtime error|terminate called|what\(\)' "$work.log" >&2
    tail -n 8 "$work.log" >&2
    echo "fuzzer $name failed (a crash, a leak or a time-out); its input and output are in $work" >&2
    status=1
    continue
  fi
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec)|^Done' "$work.log"
  rm -rf "$work" "$work.log"
done
exit $status
