# kiln data failures: malformed input (exit 2, naming file:line:column, store unchanged), unknown
# names (exit 3), validation (exit 5 listing every violation), branch rules refusing a commit
# (exit 5), and usage mistakes (exit 2). Locally and against a server.

$ kiln init > /dev/null
$ printf 'id,age,city\n1,34,Paris\n2,51,Oslo\n3,28,Rome\n' > credit.csv
$ kiln data commit credit.csv -m "good" > /dev/null
$ HEAD=$(kiln data show main --json | jq -r .id)

# Malformed CSV: a ragged row, bad quoting, a type change mid-file, an empty file, invalid UTF-8.
$ printf 'id,age,city\n1,34,Paris\n2,51\n' > credit.csv && kiln data commit credit.csv
kiln: credit.csv:3:* (glob)
[exit 2]
$ printf 'id,age,city\n1,34,"Par"is\n' > credit.csv && kiln data commit credit.csv
kiln: credit.csv:2:* (glob)
[exit 2]
$ (echo id,age,city; seq 1 400000 | awk '{print $1","$1",Paris"}'; echo '400001,old,Oslo') > credit.csv
$ kiln data commit credit.csv
kiln: credit.csv:400002:*: column 'age': expected int64, found 'old' (glob)
[exit 2]
$ : > empty.csv && kiln data commit empty.csv
kiln: *empty.csv* (glob)
[exit 2]
$ printf 'id,city\n1,Par\xffis\n' > utf.csv && kiln data commit utf.csv
kiln: utf.csv:2:* (glob)
[exit 2]
$ printf '{"a":1}\n{"a":\n' > events.jsonl && kiln data commit events.jsonl
kiln: events.jsonl:2:* (glob)
[exit 2]
$ kiln data log --json | jq -r '.commits | length'
1
$ test "$(kiln data show main --json | jq -r .id)" = "$HEAD" && echo unchanged
unchanged

# Unknown files, tables, refs.
$ kiln data commit nothing.csv
kiln: 'nothing.csv' does not exist
[exit 3]
$ printf 'a\n1\n' > other.csv && kiln data commit other.csv --table nope
kiln: table 'nope' does not exist * (glob)
[exit 3]
$ kiln data show main nope
kiln: commit [0-9a-f]{12} has no table or file 'nope' (re)
[exit 3]
$ kiln data export nope credit
kiln: no branch, tag or commit named 'nope'
[exit 3]
$ kiln data commit credit.csv --branch nope
kiln: *branch 'nope' does not exist* (glob)
[exit 3]

# Usage mistakes.
$ kiln data commit
kiln: nothing to commit: pass PATH... or --remove NAME
[exit 2]
$ printf 'id,age,city\n1,34,Paris\n' > a.csv && cp a.csv b.csv && kiln data commit a.csv b.csv --table credit
kiln: --table names the table of one file; got 2 paths
[exit 2]
$ kiln data export main credit --format xml
kiln: --format: * (glob)
...
[exit 2]
$ kiln data diff main
kiln: * (glob)
...
[exit 2]
$ kiln data gc --retention soon
kiln: --retention 'soon': expected a number with a unit (ms, s, m, h, d, w), e.g. 7d, or 0
[exit 2]
$ kiln data frobnicate
kiln: unknown command 'frobnicate' for 'data'
Run with --help for more information.
[exit 2]
$ kiln data commit --help | head -2
Commit CSV, TSV and JSONL tables and other files as a new commit on a branch
...

# Validation: every violation with column, rule, observed value and sample rows; exit 5.
$ printf 'id,age,city\n1,34,Paris\n2,-4,Oslo\n3,28,Rome\n4,-1,Lima\n4,150,Oslo\n' > people.csv
$ kiln data commit people.csv -m "people" > /dev/null
$ cat > rules.yaml <<'YAML'
> tables:
>   people:
>     row_count: {min: 10}
>     columns:
>       age: {type: int64, min: 0, max: 120}
>       id: {unique: true}
>       city: {allowed: [Paris, Oslo, Rome]}
> YAML
$ kiln data validate main --rules rules.yaml
TABLE   COLUMN  RULE       EXPECTED                    OBSERVED                                  ROWS  SAMPLE
people          row_count  >= 10                       5 rows                                    0
people  age     min        >= 0                        -4                                        2     line 3: -4, line 5: -1
people  age     max        <= 120                      150                                       1     line 6: 150
people  id      unique     no repeated values          1 rows repeat an earlier value            1     line 6: 4
people  city    allowed    one of [Paris, Oslo, Rome]  1 values outside the set, such as 'Lima'  1     line 5: Lima
kiln: 5 violation\(s\) in main \([0-9a-f]{12}\) (re)
[exit 5]
$ kiln data validate main --rules rules.yaml --json 2> /dev/null | jq -r '.violations[] | [.column, .rule, .violating_rows] | @tsv' | sort
	row_count	0
age	max	1
age	min	2
city	allowed	1
id	unique	1
$ printf 'tables:\n  people:\n    columns:\n      age: {min: 0, max: 200}\n' > loose.yaml
$ kiln data validate main --rules loose.yaml
TABLE   COLUMN  RULE  EXPECTED  OBSERVED  ROWS  SAMPLE
people  age     min   >= 0      -4        2     line 3: -4, line 5: -1
kiln: 1 violation\(s\) in main \([0-9a-f]{12}\) (re)
[exit 5]
$ printf 'tables:\n  people:\n    columns:\n      age: {min: -10}\n' > ok.yaml && kiln data validate main --rules ok.yaml
OK: main \([0-9a-f]{12}\) passes every rule (re)
$ printf 'tables: [\n' > broken.yaml && kiln data validate main --rules broken.yaml
kiln: broken.yaml* (glob)
[exit 2]
$ kiln data validate main --rules missing.yaml
kiln: rules file 'missing.yaml' does not exist
[exit 3]

# Rules attached to a branch refuse a commit that breaks them; the branch does not move.
$ printf 'tables:\n  credit:\n    columns:\n      age: {min: 0}\n' > branch-rules.yaml
$ kiln data rules main
Branch main has no rules
$ kiln data rules nope
kiln: branch 'nope' does not exist
[exit 3]
$ kiln data rules main --set branch-rules.yaml
Attached the rules of branch-rules.yaml to branch main: later commits and merges that break them are refused
$ kiln data rules main
tables:
  credit:
    columns:
      age: {min: 0}
$ BEFORE=$(kiln data show main --json | jq -r .id)
$ printf 'id,age,city\n1,34,Paris\n2,-7,Oslo\n' > credit.csv && kiln data commit credit.csv -m "negative age"
kiln: branch 'main' has rules this change breaks:
  credit.age: min expected >= 0, observed -7
[exit 5]
$ test "$(kiln data show main --json | jq -r .id)" = "$BEFORE" && echo unchanged
unchanged
$ printf 'id,age,city\n1,34,Paris\n2,7,Oslo\n' > credit.csv && kiln data commit credit.csv -m "fine" > /dev/null && echo committed
committed
$ kiln data rules main --clear
Removed the rules of branch main

# The same failures through a server keep their exit codes.
$ start_server
$ printf 'id,age,city\n1,34,Paris\n2,51\n' > credit.csv && kiln --store $KILN_URL data commit credit.csv
kiln: credit.csv:3:* (glob)
[exit 2]
$ kiln --store $KILN_URL data validate main --rules rules.yaml > /dev/null
kiln: * violation* (glob)
[exit 5]
$ kiln --store $KILN_URL data rules main --set branch-rules.yaml > /dev/null
$ printf 'id,age,city\n1,34,Paris\n2,-7,Oslo\n' > credit.csv && kiln --store $KILN_URL data commit credit.csv
kiln: branch 'main' has rules this change breaks:
  credit.age: min expected >= 0, observed -7
[exit 5]
$ kiln --store $KILN_URL data export main nope
kiln: * (glob)
[exit 3]
$ kiln fsck
Checked * commit(s) and * object(s): no problems (glob)
* unreferenced object file(s), left by refused or interrupted commits (kiln data gc removes them) (glob)
$ kiln data gc --retention 0 > /dev/null && kiln fsck
Checked * commit(s) and * object(s): no problems (glob)
