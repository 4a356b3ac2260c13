#!/usr/bin/env bash
# End-to-end tests of the `kiln` command: tests/cli/*.t, each a script of commands and their
# expected output.
#
#   usage: tests/cli/run.sh BUILD_DIR [FILE.t ...]      (default: every tests/cli/*.t)
#
# Format of a .t file (one shell per file, so variables and background jobs carry over):
#
#   # a comment                      (lines starting with '#' are ignored, as are blank lines)
#   $ kiln experiments create churn  a command (bash); `kiln` is BUILD_DIR/bin/kiln
#   > --tag team=risk                continues the previous command on a new line
#   Created experiment 'churn' ...   expected output: stdout and stderr together, in order
#   created * (glob)                 a line matched as a bash glob
#   id [0-9a-f]{32} (re)             a line matched as an extended regular expression
#   ...                              any number of lines (also none)
#   [exit 4]                         the expected exit status (default 0)
#
# Blank lines in a command's output are ignored too. Each file runs in its own empty temporary
# folder ($PWD) with TZ=UTC, USER=tester and no $KILN_STORE. Helpers available to commands:
#   start_server [ARGS]   starts `kiln server --port 0 ARGS` in the background, waits until it
#                         listens and exports KILN_URL=http://127.0.0.1:PORT
#   stop_server           SIGTERMs it and waits (prints the server's last log line)
# Servers still running when a file ends are stopped.
#
# Prints one line per file and "N passed, M failed" (commands) last; exits 1 if any failed.
set -u

if [[ $# -lt 1 ]]; then
  echo "usage: $0 BUILD_DIR [FILE.t ...]" >&2
  exit 2
fi
build_dir=$(cd "$1" && pwd) || exit 2
shift
kiln_bin="$build_dir/bin/kiln"
if [[ ! -x $kiln_bin ]]; then
  echo "run.sh: $kiln_bin not found; build the 'kiln' target first" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
if [[ $# -gt 0 ]]; then files=("$@"); else files=("$here"/*.t); fi
timeout_seconds=${KILN_CLI_TEST_TIMEOUT:-300}

passed=0
failed=0

# The prelude of every generated script: PATH, environment and the helpers.
write_prelude() {
  cat <<EOF
export PATH="$build_dir/bin:\$PATH"
export TZ=UTC USER=tester LC_ALL=C.UTF-8
unset KILN_STORE KILN_OBJECTS
cd "\$KILN_TEST_DIR" || exit 99
kiln_server_pid=""
start_server() {
  kiln server --port 0 "\$@" > "\$KILN_TEST_DIR/.server.log" 2>&1 &
  kiln_server_pid=\$!
  for _ in \$(seq 1 100); do
    KILN_URL=\$(grep -o 'http://[0-9.]*:[0-9]*' "\$KILN_TEST_DIR/.server.log" 2>/dev/null | head -1)
    if [[ -n \$KILN_URL ]]; then export KILN_URL; return 0; fi
    if ! kill -0 "\$kiln_server_pid" 2>/dev/null; then cat "\$KILN_TEST_DIR/.server.log"; return 1; fi
    sleep 0.1
  done
  echo "server did not start"; return 1
}
stop_server() {
  [[ -n \$kiln_server_pid ]] || return 0
  kill -TERM "\$kiln_server_pid"; wait "\$kiln_server_pid"; local rc=\$?
  kiln_server_pid=""
  tail -1 "\$KILN_TEST_DIR/.server.log"
  return \$rc
}
trap 'if [[ -n \$kiln_server_pid ]]; then kill -TERM "\$kiln_server_pid" 2>/dev/null; wait "\$kiln_server_pid" 2>/dev/null; fi' EXIT
EOF
}

# match_lines E A: do expected lines exp[E..] match actual lines act[A..]? ("..." backtracks)
match_lines() {
  local e=$1 a=$2
  while (( e < ${#exp[@]} )); do
    local pattern=${exp[e]}
    if [[ $pattern == "..." ]]; then
      local k
      for (( k = a; k <= ${#act[@]}; k++ )); do
        if match_lines $((e + 1)) "$k"; then return 0; fi
      done
      return 1
    fi
    (( a < ${#act[@]} )) || return 1
    local line=${act[a]}
    if [[ $pattern == *" (re)" ]]; then
      local re=${pattern% (re)}
      [[ $line =~ ^${re}$ ]] || return 1
    elif [[ $pattern == *" (glob)" ]]; then
      local glob=${pattern% (glob)}
      # shellcheck disable=SC2053  # unquoted on purpose: a glob
      [[ $line == $glob ]] || return 1
    else
      [[ $line == "$pattern" ]] || return 1
    fi
    (( e++, a++ ))
  done
  (( a == ${#act[@]} ))
}

for file in "${files[@]}"; do
  name=$(basename "$file")
  work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-cli-test.XXXXXX")
  results="$work/.results"
  project="$work/project"
  mkdir -p "$results" "$project"

  # Parse: commands, their expected lines and exit codes.
  commands=()
  expected=()
  exits=()
  n=-1
  while IFS= read -r line || [[ -n $line ]]; do
    if [[ $line == '$ '* ]]; then
      (( n++ ))
      commands[n]=${line:2}
      expected[n]=""
      exits[n]=0
    elif (( n < 0 )) || [[ -z ${line//[[:space:]]/} || $line == '#'* ]]; then
      continue
    elif [[ $line == '> '* && -z ${expected[n]} ]]; then
      commands[n]+=$'\n'"${line:2}"
    elif [[ $line =~ ^\[exit\ ([0-9]+)\]$ ]]; then
      exits[n]=${BASH_REMATCH[1]}
    else
      expected[n]+="$line"$'\n'
    fi
  done < "$file"

  script="$work/script.sh"
  {
    write_prelude
    for (( i = 0; i <= n; i++ )); do
      printf '{\n%s\n} > "%s/%d.out" 2>&1 < /dev/null\necho $? > "%s/%d.rc"\n' \
        "${commands[i]}" "$results" "$i" "$results" "$i"
    done
  } > "$script"

  KILN_TEST_DIR="$project" timeout "$timeout_seconds" bash "$script" > "$work/script.log" 2>&1
  script_rc=$?

  file_failed=0
  for (( i = 0; i <= n; i++ )); do
    mapfile -t exp < <(printf '%s' "${expected[i]}")
    act=()
    if [[ -f $results/$i.out ]]; then
      while IFS= read -r line || [[ -n $line ]]; do
        [[ -n ${line//[[:space:]]/} ]] && act+=("$line")
      done < "$results/$i.out"
    fi
    rc=$(cat "$results/$i.rc" 2>/dev/null || echo "none")
    if [[ $rc == "${exits[i]}" ]] && match_lines 0 0; then
      (( passed++ ))
    else
      (( failed++ ))
      file_failed=1
      echo "--- $name: command $((i + 1)) failed"
      echo "\$ ${commands[i]}"
      echo "expected (exit ${exits[i]}):"
      printf '  | %s\n' "${exp[@]}"
      echo "actual (exit $rc):"
      printf '  | %s\n' "${act[@]}"
    fi
  done
  if (( script_rc == 124 )); then
    echo "--- $name: timed out after ${timeout_seconds}s"
    file_failed=1
  fi
  if (( file_failed )); then
    echo "FAIL $name (kept $work)"
  else
    echo "ok   $name"
    rm -rf "$work"
  fi
done

echo "$passed passed, $failed failed"
(( failed == 0 ))
