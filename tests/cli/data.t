# kiln data: commit tables and files, log, show, references, diff, checkout, export, revert,
# branches and tags, gc and fsck; then the same journey against a kiln server (--store http://).

$ kiln init > /dev/null
$ printf 'id,age,city\n1,34,Paris\n2,51,Oslo\n3,28,Rome\n' > credit.csv
$ printf '{"user":"a","clicks":3}\n{"user":"b","clicks":null}\n' > events.jsonl
$ printf '\x89PNG\r\n\x1a\n\x00\xff binary bytes' > cat.png
$ cp credit.csv credit_jan.csv

# A table with a key, then a JSONL table and an opaque file.
$ kiln data commit credit.csv --key id -m "jan"
\[main [0-9a-f]{12}\] jan (re)
NAME    ROWS  SIZE  CHUNKS  NEW  STORED
credit  3     43 B  1       1    * B (glob)

$ kiln data commit events.jsonl cat.png -m "events and an image"
\[main [0-9a-f]{12}\] events and an image (re)
NAME     ROWS  SIZE  CHUNKS  NEW  STORED
events   2     51 B  1       1    * B (glob)
cat.png        23 B  1       1    * B (glob)

# The same files again: nothing to commit.
$ kiln data commit credit.csv -m "again"
Nothing to commit: main already holds these files \(commit [0-9a-f]{12}\) (re)

$ kiln data log
COMMIT        CREATED              AUTHOR  REFS  MESSAGE
[0-9a-f]{12}  [0-9: -]{19}  tester  main  events and an image (re)
[0-9a-f]{12}  [0-9: -]{19}  tester        jan (re)

$ kiln data show main
commit   [0-9a-f]{64} (re)
parents  [0-9a-f]{12} (re)
author   tester
created  [0-9: -]{19} (re)
message  events and an image
NAME     FILE          FORMAT  ROWS  COLUMNS  SIZE  KEY
cat.png  cat.png       bytes                  23 B
credit   credit.csv    csv     3     3        43 B  id
events   events.jsonl  jsonl   2     2        51 B

$ kiln data show main credit
table   credit
file    credit.csv
format  csv
commit  [0-9a-f]{64} (re)
rows    3
size    43 B
key     id
schema:
COLUMN  TYPE    NULLABLE
id      int64   no
age     int64   no
city    string  no

$ kiln data show main events --profile
table   events
file    events.jsonl
format  jsonl
commit  [0-9a-f]{64} (re)
rows    2
size    51 B
key
profile:
COLUMN  TYPE    COUNT  NULLS  MIN  MAX  MEAN  STD  DISTINCT  TOP
user    string  2      0                           2         a (1), b (1)
clicks  int64   1      1      3    3    3

$ kiln data show main credit --profile --json | jq -c '.profile.columns[1] | [.name, .min, .max, .sample]'
["age",28,51,[28,34,51]]

$ kiln data tag v1.0
Created tag v1.0 at [0-9a-f]{12} \(main\) (re)

# February: one row changed, one added.
$ printf 'id,age,city\n1,34,Paris\n2,52,Oslo\n3,28,Rome\n4,45,Lima\n' > credit.csv
$ kiln data commit credit.csv -m "feb" > /dev/null

$ kiln data diff v1.0 main
credit: modified (1 added, 0 removed, 1 changed)
  ~ key 2: age 51 -> 52
  + key 4: {"age":45,"city":"Lima","id":4}

$ kiln data diff main~1 main --max-rows 1
credit: modified (1 added, 0 removed, 1 changed)
  ~ key 2: age 51 -> 52
  ... 1 more row change(s) (raise --max-rows)

$ kiln data diff v1.0 main --json | jq -c '.tables[0] | [.table, .status, .rows_added, .rows_changed]'
["credit","modified",1,1]

$ kiln data diff main main
No differences between main \([0-9a-f]{12}\) and main \([0-9a-f]{12}\) (re)

# References: ancestors, tags, id prefixes and times.
$ kiln data show main~1 --json | jq -r .message
events and an image
$ kiln data show 'main^' --json | jq -r .message
events and an image
$ kiln data show v1.0 --json | jq -r .message
events and an image
$ JAN=$(kiln data log --json | jq -r '.commits[2].id') && kiln data show ${JAN:0:6} --json | jq -r .message
jan
$ kiln data show 'main@{2999-01-01}' --json | jq -r .message
feb
$ kiln data show 'main@{2000-01-01}'
kiln: no commit in 'main' at or before 2000-01-01* (glob)
[exit 3]
$ kiln data show main~9
kiln: * (glob)
[exit 3]

# Checkout gives back byte-identical files.
$ kiln data checkout v1.0 --to out
Checked out 3 file\(s\) of commit [0-9a-f]{12} into out (re)
$ cmp out/credit.csv credit_jan.csv && cmp out/cat.png cat.png && cmp out/events.jsonl events.jsonl && echo identical
identical
$ kiln data checkout main --to one --table cat.png && ls one
Checked out 1 file\(s\) of commit [0-9a-f]{12} into one (re)
cat.png

# Export converts between CSV and JSONL; a JSONL version of the table exports back to the CSV.
$ kiln data export main credit --format jsonl | tee credit.jsonl
{"id":1,"age":34,"city":"Paris"}
{"id":2,"age":52,"city":"Oslo"}
{"id":3,"age":28,"city":"Rome"}
{"id":4,"age":45,"city":"Lima"}
$ kiln data commit credit.jsonl -m "as jsonl" > /dev/null
$ kiln data show main --json | jq -r '.entries[] | select(.name == "credit") | .format'
jsonl
$ kiln data export main credit --format csv | cmp - credit.csv && echo same
same
$ kiln data export main credit -o exported.tsv --format tsv && head -2 exported.tsv
Exported credit@main as tsv to exported.tsv (* B) (glob)
id	age	city
1	34	Paris

# Revert undoes the last commit: the CSV version is back.
$ kiln data revert main
\[main [0-9a-f]{12}\] revert [0-9a-f]{12}: as jsonl (re)
$ kiln data export main credit | cmp - credit.csv && echo reverted
reverted

# Branches and tags.
$ kiln data branch dev v1.0
Created branch dev at [0-9a-f]{12} \(v1.0\) (re)
$ kiln data branch
BRANCH  COMMIT        UPDATED
dev     [0-9a-f]{12}  [0-9: -]{19} (re)
main    [0-9a-f]{12}  [0-9: -]{19} (re)
$ kiln data tag
TAG   COMMIT        UPDATED
v1.0  [0-9a-f]{12}  [0-9: -]{19} (re)
$ kiln data branch -d dev
Deleted branch dev
$ kiln data branch -d dev
kiln: branch 'dev' does not exist
[exit 3]
$ kiln data tag v1.0
kiln: * (glob)
[exit 4]

# gc keeps everything a branch or tag reaches; fsck finds nothing wrong.
$ kiln data gc --retention 0 --dry-run
Would remove 0 commit(s) and 0 object(s), freeing 0 B; * object(s) kept (glob)
$ kiln data gc --retention 0
Removed 0 commit(s) and 0 object(s), freed 0 B; * object(s) kept (glob)
$ kiln fsck
Checked 5 commit(s) and * object(s): no problems (glob)
$ kiln fsck --json | jq -c '[.ok, .commits_checked, .problems]'
[true,5,[]]

# The same journey against a kiln server on this store: the same answers.
$ start_server
$ diff <(kiln data log) <(kiln --store $KILN_URL data log) && echo same
same
$ diff <(kiln data show v1.0 credit --profile) <(kiln --store $KILN_URL data show v1.0 credit --profile) && echo same
same
$ diff <(kiln data diff v1.0 main) <(kiln --store $KILN_URL data diff v1.0 main) && echo same
same

# Commits upload their files (folders too); checkout downloads them byte for byte.
$ mkdir -p images/dogs && printf 'meow' > images/cat.png && printf 'woof' > images/dogs/rex.png
$ printf 'id,age,city\n1,34,Paris\n2,52,Oslo\n3,28,Rome\n4,45,Lima\n5,61,Kyiv\n' > credit.csv
$ kiln --store $KILN_URL data commit credit.csv images -m "march, remotely"
\[main [0-9a-f]{12}\] march, remotely (re)
NAME                 ROWS  SIZE  CHUNKS  NEW  STORED
credit               5     63 B  1       1    * B (glob)
images/cat.png             4 B   1       1    * B (glob)
images/dogs/rex.png        4 B   1       1    * B (glob)
$ kiln --store $KILN_URL data checkout main --to remote-out
Checked out 5 file\(s\) of commit [0-9a-f]{12} into remote-out (re)
$ cmp remote-out/credit.csv credit.csv && cmp remote-out/images/dogs/rex.png images/dogs/rex.png && cmp remote-out/cat.png cat.png && echo identical
identical
$ kiln --store $KILN_URL data export main~1 credit --format jsonl | head -1
{"id":1,"age":34,"city":"Paris"}
$ kiln --store $KILN_URL data tag v2
Created tag v2 at [0-9a-f]{12} \(main\) (re)
$ kiln --store $KILN_URL data branch exp v2 && kiln --store $KILN_URL data merge exp
Created branch exp at [0-9a-f]{12} \(v2\) (re)
Already up to date: main contains exp
$ kiln --store $KILN_URL data revert main --json | jq -r .message
revert *: march, remotely (glob)
$ kiln data log -n 1 --json | jq -r '.commits[0].message'
revert *: march, remotely (glob)
$ kiln --store $KILN_URL data show nope
kiln: no branch, tag or commit named 'nope'
[exit 3]
$ kiln --store $KILN_URL fsck
Checked 7 commit(s) and * object(s): no problems (glob)
$ kiln --store $KILN_URL data gc --dry-run --json | jq -c '[.commits_removed, .objects_removed]'
[0,0]
$ stop_server
kiln server stopped
