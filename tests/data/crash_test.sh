#!/usr/bin/env bash
# Crash safety of `kiln data commit` and `kiln data merge` (issue 3, "Done means").
#
#   usage: bash tests/data/crash_test.sh BUILD_DIR        (uses BUILD_DIR/bin/kiln)
#   KILN_CRASH_SEED=N repeats the random kills of an earlier run.
#
# Part 1, fault points: for each point, a fresh store that already has a commit runs the command
# with KILN_FAULT=<point> (the process _exits 137 there, as kill -9 would). The case passes when
#   - the command exited 137 (a point the command never reaches makes it exit 0: that fails the
#     case, unless the point is marked optional);
#   - `kiln fsck` exits 0;
#   - `kiln data log REF --json` shows either the old head, whose checkout still gives the old
#     files byte for byte, or the complete new commit, whose checkout gives the new files;
#   - the same command run again without a fault succeeds and gives the new files (so a crash
#     leaves no lock or debris that blocks the next writer), and fsck is still clean.
# Part 2, kill -9 at random moments: 20 commits of a ~30 MB CSV started in the background and
# killed after a random 0-400 ms (longer if an unkilled commit took longer), each followed by the same fsck and all-or-nothing checks, then
# one last commit that must succeed.
#
# Prints one line per case and "N passed, M failed" last; exits 1 if any case failed.
set -u

if [[ $# -lt 1 ]]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
build_dir=$(cd "$1" && pwd) || exit 2
kiln="$build_dir/bin/kiln"
if [[ ! -x $kiln ]]; then
  echo "crash_test: $kiln not found; build the 'kiln' target first" >&2
  exit 2
fi
for tool in python3 awk cmp timeout; do
  command -v "$tool" >/dev/null || { echo "crash_test: needs $tool" >&2; exit 2; }
done
unset KILN_STORE KILN_OBJECTS KILN_FAULT
export LC_ALL=C TZ=UTC

root=$(mktemp -d "${TMPDIR:-/tmp}/kiln-crash-test.XXXXXX") || exit 2
cleanup() {
  [[ -n ${kill_pid:-} ]] && kill -9 "$kill_pid" 2>/dev/null
  rm -rf "$root"
}
trap cleanup EXIT
started=$SECONDS
passed=0
failed=0
why=""  # set by a failing check

pass() { passed=$((passed + 1)); printf 'ok    %s\n' "$1"; }
fail() {
  failed=$((failed + 1))
  printf 'FAIL  %s\n' "$1"
  printf '      %s\n' "$why" | head -20
}

# kiln_in DIR ARGS...: kiln run from the store's folder (the store is found from the cwd), with
# a time limit so that a hang (a lock left by a crash) fails the case instead of the run.
kiln_in() {
  local dir=$1
  shift
  (cd "$dir" && timeout 120 "$kiln" "$@")
}

# gen_table FILE ROWS SEED: id plus five float columns, ~45 bytes a row (about 1 MB per 23k rows,
# so the fault cases' ~3 MB files span several of the chunker's ~1 MB chunks).
gen_table() {
  awk -v n="$2" -v seed="$3" 'BEGIN {
    srand(seed); print "id,a,b,c,d,e"
    for (i = 0; i < n; i++)
      printf "%d,%.4f,%.4f,%.4f,%.4f,%.4f\n", i, rand() * 1000, rand() * 100, rand(), rand() * 10, rand() * 10000
  }' >"$1"
}

# head_of DIR REF: the id of REF's newest commit ("" if none).
head_of() {
  kiln_in "$1" data log "$2" --json 2>/dev/null | python3 -c '
import json, sys
try:
    j = json.load(sys.stdin)
except ValueError:
    sys.exit(0)
c = j["commits"] if isinstance(j, dict) and "commits" in j else j
c = c if isinstance(c, list) else [c]
print(c[0]["id"] if c else "")'
}

# same_rows A B: the two CSVs hold the same header and the same rows by id (values compared as
# numbers, order ignored): how a merged keyed table is checked, since a merge may rewrite it.
same_rows() {
  python3 - "$1" "$2" <<'EOF'
import csv, sys
def load(path):
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        return header, {int(float(r[0])): tuple(float(x) for x in r[1:]) for r in reader}
ha, a = load(sys.argv[1])
hb, b = load(sys.argv[2])
sys.exit(0 if ha == hb and a == b else 1)
EOF
}

# check_checkout DIR REF SPEC...: checks out REF and compares each file of SPEC, "NAME=EXPECTED"
# (byte for byte) or "NAME=rows:EXPECTED" (same_rows).
check_checkout() {
  local dir=$1 ref=$2 out="$root/checkout" pair name expected
  shift 2
  rm -rf "$out"
  if ! kiln_in "$dir" data checkout "$ref" --to "$out" >"$root/checkout.log" 2>&1; then
    why="kiln data checkout $ref failed: $(tail -3 "$root/checkout.log")"
    return 1
  fi
  for pair in "$@"; do
    name=${pair%%=*}
    expected=${pair#*=}
    if [[ ! -f $out/$name ]]; then
      why="checkout of $ref has no $name (has: $(cd "$out" && ls | tr '\n' ' '))"
      return 1
    fi
    if [[ $expected == rows:* ]]; then
      same_rows "$out/$name" "${expected#rows:}" || { why="checkout of $ref: $name has the wrong rows"; return 1; }
    else
      cmp -s "$out/$name" "$expected" || { why="checkout of $ref: $name differs from $expected"; return 1; }
    fi
  done
  rm -rf "$out"
}

# fsck_clean DIR
fsck_clean() {
  if ! kiln_in "$1" fsck >"$root/fsck.log" 2>&1; then
    why="kiln fsck exited non-zero: $(tail -5 "$root/fsck.log")"
    return 1
  fi
}

# all_or_nothing DIR REF OLD_ID "OLD_SPEC" "NEW_SPEC": fsck is clean and REF is either still at
# OLD_ID with the old files intact, or at a new commit holding exactly the new files. Sets
# `outcome` to "old head" or "new commit".
all_or_nothing() {
  local dir=$1 ref=$2 old=$3 old_spec=$4 new_spec=$5 head
  fsck_clean "$dir" || return 1
  head=$(head_of "$dir" "$ref")
  if [[ -z $head ]]; then
    why="kiln data log $ref --json shows no commit"
    return 1
  fi
  if [[ $head == "$old" ]]; then
    outcome="old head"
    # shellcheck disable=SC2086  # specs are space-separated NAME=PATH words
    check_checkout "$dir" "$old" $old_spec
  else
    outcome="new commit"
    # shellcheck disable=SC2086
    check_checkout "$dir" "$head" $new_spec
  fi
}

# ---------------------------------------------------------------------------------------------
# Part 1: fault points.

data="$root/data"
mkdir -p "$data"
gen_table "$data/t_base.csv" 70000 1   # ~3 MB
gen_table "$data/t_new.csv" 70000 2
gen_table "$data/u_new.csv" 40000 3
# A keyed table edited on two branches in different rows: a row-level three-way merge.
gen_table "$data/k_base.csv" 70000 4
awk -F, -v OFS=, 'NR > 1 && $1 < 3000 { $2 = "1111.0000" } 1' "$data/k_base.csv" >"$data/k_branch.csv"
awk -F, -v OFS=, 'NR > 1 && $1 >= 67000 { $3 = "22.0000" } 1' "$data/k_base.csv" >"$data/k_main.csv"
awk -F, -v OFS=, 'NR > 1 && $1 < 3000 { $2 = "1111.0000" } NR > 1 && $1 >= 67000 { $3 = "22.0000" } 1' \
  "$data/k_base.csv" >"$data/k_merged.csv"

case_number=0
# Each setup_* makes a fresh store in $store, sets `ref`, `old_head`, `old_spec`, `new_spec` and
# the command `cmd` (an array of kiln arguments) whose crash is tested. Returns non-zero (with
# `why`) if the setup itself failed.
new_store() {
  case_number=$((case_number + 1))
  store="$root/case$case_number"
  kiln_in "$root" init "$store" >"$root/setup.log" 2>&1 || { why="kiln init: $(tail -3 "$root/setup.log")"; return 1; }
}
setup_step() {  # setup_step ARGS...: a kiln command in $store that must succeed
  kiln_in "$store" "$@" >>"$root/setup.log" 2>&1 || { why="setup: kiln $*: $(tail -3 "$root/setup.log")"; return 1; }
}

setup_commit() {  # table t committed; the new commit changes t and adds u
  new_store || return 1
  cp "$data/t_base.csv" "$store/t.csv"
  setup_step data commit t.csv -m base || return 1
  ref=main
  old_head=$(head_of "$store" main)
  old_spec="t.csv=$data/t_base.csv"
  new_spec="t.csv=$data/t_new.csv u.csv=$data/u_new.csv"
  cp "$data/t_new.csv" "$store/t.csv"
  cp "$data/u_new.csv" "$store/u.csv"
  cmd=(data commit t.csv u.csv -m new)
}

setup_merge_tables() {  # branch b changed table t, main added table u: the merge takes both
  new_store || return 1
  cp "$data/t_base.csv" "$store/t.csv"
  setup_step data commit t.csv -m base || return 1
  setup_step data branch b main || return 1
  cp "$data/t_new.csv" "$store/t.csv"
  setup_step data commit t.csv --branch b -m "t on b" || return 1
  cp "$data/u_new.csv" "$store/u.csv"
  setup_step data commit u.csv -m "u on main" || return 1
  ref=main
  old_head=$(head_of "$store" main)
  old_spec="t.csv=$data/t_base.csv u.csv=$data/u_new.csv"
  new_spec="t.csv=$data/t_new.csv u.csv=$data/u_new.csv"
  cmd=(data merge b --into main)
}

setup_merge_rows() {  # keyed table k: branch b edits rows 0..2999, main edits the last 3000
  new_store || return 1
  cp "$data/k_base.csv" "$store/k.csv"
  setup_step data commit k.csv --key id -m base || return 1
  setup_step data branch b main || return 1
  cp "$data/k_branch.csv" "$store/k.csv"
  setup_step data commit k.csv --branch b -m "edit on b" || return 1
  cp "$data/k_main.csv" "$store/k.csv"
  setup_step data commit k.csv -m "edit on main" || return 1
  ref=main
  old_head=$(head_of "$store" main)
  old_spec="k.csv=$data/k_main.csv"
  new_spec="k.csv=rows:$data/k_merged.csv"
  cmd=(data merge b --into main)
}

# fault_case SETUP POINT required|optional
fault_case() {
  local setup=$1 point=$2 kind=$3 label rc log="$root/fault.log"
  label="$(printf '%-18s %-34s' "${setup#setup_}" "$point")"
  why=""
  if ! $setup; then fail "$label setup failed"; return; fi
  if [[ -z $old_head ]]; then why="no head after setup"; fail "$label"; return; fi
  (cd "$store" && KILN_FAULT=$point timeout 120 "$kiln" "${cmd[@]}") >"$log" 2>&1
  rc=$?
  local reached="exit 137"
  if [[ $rc -eq 0 ]]; then
    if [[ $kind == required ]]; then
      why="kiln ${cmd[*]} exited 0: the point was never reached"
      fail "$label"
      return
    fi
    reached="not reached (optional), exit 0"
  elif [[ $rc -ne 137 ]]; then
    why="kiln ${cmd[*]} exited $rc, expected 137: $(tail -3 "$log")"
    fail "$label"
    return
  fi
  outcome=""
  if ! all_or_nothing "$store" "$ref" "$old_head" "$old_spec" "$new_spec"; then
    fail "$label $reached"
    return
  fi
  local after=$outcome
  # The same command again, without a fault: it must work, and give the new files.
  if ! kiln_in "$store" "${cmd[@]}" >"$log" 2>&1; then
    why="retry of kiln ${cmd[*]} failed: $(tail -3 "$log")"
    fail "$label $reached, $after"
    return
  fi
  # shellcheck disable=SC2086
  if ! fsck_clean "$store" || ! check_checkout "$store" "$ref" $new_spec; then
    fail "$label $reached, $after; after the retry"
    return
  fi
  pass "$label $reached, fsck clean, store shows the $after; retry ok"
  rm -rf "$store"
}

echo "== fault points (KILN_FAULT=<point>; the process exits 137 there)"
for point in objects.put.after_write objects.put.after_rename "objects.put.after_rename#3" \
  objects.sync.before objects.sync.after data.commit.before_metadata data.commit.after_metadata; do
  fault_case setup_commit "$point" required
done
for point in atomic_write.before_fsync atomic_write.before_rename atomic_write.after_rename \
  "objects.put.after_write#3" data.ingest.after_chunk "data.ingest.after_chunk#3"; do
  fault_case setup_commit "$point" optional
done
for setup in setup_merge_tables setup_merge_rows; do
  for point in data.merge.before_metadata data.merge.after_metadata; do
    fault_case "$setup" "$point" required
  done
done
for point in objects.put.after_rename objects.sync.before objects.sync.after \
  atomic_write.before_rename; do
  fault_case setup_merge_rows "$point" optional
done

# ---------------------------------------------------------------------------------------------
# Part 2: kill -9 at random moments.

echo "   ($((SECONDS - started)) s so far)"
seed=${KILN_CRASH_SEED:-$(( ($(date +%s) + $$) % 32768 ))}
RANDOM=$seed
echo "== kill -9 at random moments (seed $seed; rerun with KILN_CRASH_SEED=$seed)"

# ~30 MB of six float columns "d.ddddd"; each version is the base with its digits permuted, so
# every row (and every chunk) changes while the file stays valid CSV of the same schema.
awk -v n=625000 'BEGIN {
  srand(11); print "a,b,c,d,e,f"
  for (i = 0; i < n; i++)
    printf "%d.%05d,%d.%05d,%d.%05d,%d.%05d,%d.%05d,%d.%05d\n",
      int(rand() * 10), int(rand() * 100000), int(rand() * 10), int(rand() * 100000),
      int(rand() * 10), int(rand() * 100000), int(rand() * 10), int(rand() * 100000),
      int(rand() * 10), int(rand() * 100000), int(rand() * 10), int(rand() * 100000)
  }' >"$data/kill_base.csv"
permuted_version() {  # permuted_version OUT: the base with a random permutation of the digits
  local digits=(0 1 2 3 4 5 6 7 8 9) j k tmp
  for ((j = 9; j > 0; j--)); do
    k=$((RANDOM % (j + 1)))
    tmp=${digits[j]}
    digits[j]=${digits[k]}
    digits[k]=$tmp
  done
  tr 0123456789 "$(IFS=; echo "${digits[*]}")" <"$data/kill_base.csv" >"$1"
}

kstore="$root/kill"
visible="$root/visible.csv"  # what the branch's head holds
if ! kiln_in "$root" init "$kstore" >"$root/setup.log" 2>&1; then
  why="kiln init: $(tail -3 "$root/setup.log")"
  fail "kill -9 setup"
else
  cp "$data/kill_base.csv" "$kstore/data.csv"
  cp "$data/kill_base.csv" "$visible"
  # The base, then one new version untimed-by-kill: how long a commit of a new version takes here.
  if ! kiln_in "$kstore" data commit data.csv -m base >"$root/setup.log" 2>&1 ||
    ! permuted_version "$kstore/data.csv" ||
    ! { commit_start=$(date +%s%N) && kiln_in "$kstore" data commit data.csv -m second >"$root/setup.log" 2>&1; }; then
    why="setup commits: $(tail -3 "$root/setup.log")"
    fail "kill -9 setup"
  else
    cp "$kstore/data.csv" "$visible"
    # Kills land in 0-400 ms or, when a commit of a new version took longer than that (a slow or
    # busy machine), in 0 to its time + 20%, so that some still land in a commit's last steps
    # (sync, metadata) or after it.
    commit_ms=$(( ($(date +%s%N) - commit_start) / 1000000 ))
    max_delay=$(( commit_ms * 12 / 10 > 400 ? commit_ms * 12 / 10 : 400 ))
    echo "   (a commit of a new ~30 MB version took $commit_ms ms here; kills land in 0-$max_delay ms)"
    for i in $(seq 1 20); do
      why=""
      permuted_version "$kstore/data.csv"
      old=$(head_of "$kstore" main)
      delay=$((RANDOM % (max_delay + 1)))
      (cd "$kstore" && exec "$kiln" data commit data.csv -m "kill $i") >"$root/kill.log" 2>&1 &
      kill_pid=$!
      sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
      kill -9 "$kill_pid" 2>/dev/null
      wait "$kill_pid" 2>/dev/null
      rc=$?
      kill_pid=""
      label="$(printf 'kill -9 %2d after %4d ms' "$i" "$delay")"
      if [[ $rc -ne 0 && $rc -ne 137 ]]; then
        why="the commit exited $rc before the kill: $(tail -3 "$root/kill.log")"
        fail "$label"
        continue
      fi
      if all_or_nothing "$kstore" main "$old" "data.csv=$visible" "data.csv=$kstore/data.csv"; then
        [[ $outcome == "new commit" ]] && cp "$kstore/data.csv" "$visible"
        pass "$label (exit $rc): fsck clean, store shows the $outcome"
      else
        fail "$label (exit $rc)"
        # Whatever the store shows now is the baseline of the next round.
        [[ $(head_of "$kstore" main) != "$old" ]] && cp "$kstore/data.csv" "$visible"
      fi
    done
    permuted_version "$kstore/data.csv"
    why=""
    if kiln_in "$kstore" data commit data.csv -m final >"$root/kill.log" 2>&1 &&
      fsck_clean "$kstore" && check_checkout "$kstore" main "data.csv=$kstore/data.csv"; then
      pass "final commit after the kills: ok, fsck clean, checkout identical"
    else
      [[ -z $why ]] && why="final commit failed: $(tail -3 "$root/kill.log")"
      fail "final commit after the kills"
    fi
  fi
fi

echo
echo "crash test: $((SECONDS - started)) s"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
