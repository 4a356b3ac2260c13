# kiln data merge: fast-forward, a clean three-way merge of keyed row edits, conflicts listed with
# both values (exit 4, nothing changed), and --strategy ours|theirs resolving them.

$ kiln init > /dev/null
$ rows() { printf 'id,amount,label\n'; for i in $(seq 1 20); do printf '%s,%s,%s\n' $i $((i * 10)) x; done; }
$ rows > sales.csv
$ kiln data commit sales.csv --key id -m "base" > /dev/null
$ kiln data branch dev
Created branch dev at [0-9a-f]{12} \(main\) (re)

# Only dev moved: main fast-forwards.
$ rows | sed 's/^3,30,x$/3,33,x/' > sales.csv
$ kiln data commit sales.csv --branch dev -m "dev: fix 3" > /dev/null
$ kiln data merge dev
Fast-forwarded main to [0-9a-f]{12} (re)
$ kiln data merge dev
Already up to date: main contains dev

# Both moved, on different keys: a clean three-way merge.
$ rows | sed -e 's/^3,30,x$/3,33,x/' -e 's/^5,50,x$/5,55,main/' > sales.csv
$ kiln data commit sales.csv -m "main: fix 5" > /dev/null
$ rows | sed -e 's/^3,30,x$/3,33,x/' -e 's/^9,90,x$/9,99,dev/' > sales.csv
$ printf '21,210,new\n' >> sales.csv
$ kiln data commit sales.csv --branch dev -m "dev: fix 9, add 21" > /dev/null
$ kiln data merge dev -m "merge dev"
Merged dev into main: [0-9a-f]{12} (re)
$ kiln data export main sales | grep -E '^(3|5|9|21),'
3,33,x
5,55,main
9,99,dev
21,210,new
$ kiln data log -n 1 --json | jq -c '.commits[0] | [.message, (.parents | length)]'
["merge dev",2]

# Both changed key 7 differently: a conflict listing both rows; main does not move.
$ kiln data export main sales > sales.csv && sed -i 's/^7,70,x$/7,71,ours/' sales.csv
$ kiln data commit sales.csv -m "main: 7" > /dev/null
$ kiln data export dev sales > sales.csv && sed -i 's/^7,70,x$/7,72,theirs/' sales.csv
$ kiln data commit sales.csv --branch dev -m "dev: 7" > /dev/null
$ HEAD=$(kiln data show main --json | jq -r .id)
$ kiln data merge dev
CONFLICT sales key 7: both changed
  ours (main):   {"amount":71,"id":7,"label":"ours"}
  theirs (dev): {"amount":72,"id":7,"label":"theirs"}
kiln: merge of dev into main stopped: 1 conflict(s), nothing was changed (resolve with --strategy ours|theirs)
[exit 4]
$ test "$(kiln data show main --json | jq -r .id)" = "$HEAD" && echo unchanged
unchanged
$ kiln data merge dev --json 2> /dev/null | jq -c '.conflicts[0] | [.table, .key, .ours.amount, .theirs.amount]'
["sales","7",71,72]

# A strategy resolves every conflict to one side (theirs: in the server part below).
$ kiln data merge dev --strategy ours
Merged dev into main: [0-9a-f]{12} (re)
$ kiln data export main sales | grep '^7,'
7,71,ours
$ kiln data merge dev --strategy theirs
Already up to date: main contains dev

$ kiln data merge dev --strategy both
kiln: --strategy: * (glob)
...
[exit 2]
$ kiln data merge nope
kiln: no branch, tag or commit named 'nope'
[exit 3]
$ kiln fsck
Checked * commit(s) and * object(s): no problems (glob)

# Against a server: the same conflict, the same exit code.
$ kiln data branch side main~1 > /dev/null
$ kiln data export main sales | sed 's/^1,10,x$/1,1000,main/' > sales.csv && kiln data commit sales.csv -m "main: 1" > /dev/null
$ kiln data export side sales | sed 's/^1,10,x$/1,2000,side/' > sales.csv && kiln data commit sales.csv --branch side -m "side: 1" > /dev/null
$ start_server
$ kiln --store $KILN_URL data merge side
CONFLICT sales key 1: both changed
  ours (main):   {"amount":1000,"id":1,"label":"main"}
  theirs (side): {"amount":2000,"id":1,"label":"side"}
kiln: merge of side into main stopped: 1 conflict(s), nothing was changed (resolve with --strategy ours|theirs)
[exit 4]
$ kiln --store $KILN_URL data merge side --strategy theirs
Merged side into main: [0-9a-f]{12} (re)
$ kiln --store $KILN_URL data export main sales | grep '^1,'
1,2000,side
