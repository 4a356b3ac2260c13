# kiln server, and every read command against it (--store http://...) giving the same output as
# against the local store.

$ kiln init > /dev/null

$ start_server --threads 2 && echo $KILN_URL
http://127.0.0.1:[0-9]+ (re)

$ head -1 .server.log
kiln server listening on http://127.0.0.1:* (store: sqlite://*/project/.kiln/kiln.db) (glob)

$ curl -s $KILN_URL/health
OK

# Writes through the server.
$ kiln --store $KILN_URL experiments create churn
Created experiment 'churn' with id 1

$ kiln --store $KILN_URL experiments create churn
kiln: Experiment(name=churn) already exists.
[exit 4]

$ A=$(kiln --store $KILN_URL runs create --experiment churn --name run-a)
$ B=$(kiln --store $KILN_URL runs create --experiment churn --name run-b)
$ kiln --store $KILN_URL runs log $A --metric rmse=0.5 --param lr=0.1 > /dev/null
$ kiln --store $KILN_URL runs log $B --metric rmse=0.4 --param lr=0.2 > /dev/null
$ kiln --store $KILN_URL runs end $A > /dev/null

# The model registry, filled with MLflow's REST API as a client would.
$ post() { curl -sf -X POST "$KILN_URL/api/2.0/mlflow/$1" -H 'Content-Type: application/json' -d "$2" > /dev/null; }
$ post registered-models/create '{"name": "credit", "description": "credit scoring"}'
$ post registered-models/create '{"name": "fraud"}'
$ post model-versions/create "{\"name\": \"credit\", \"source\": \"mlflow-artifacts:/1/$A/artifacts/model\", \"run_id\": \"$A\"}"
$ post model-versions/create "{\"name\": \"credit\", \"source\": \"mlflow-artifacts:/1/$B/artifacts/model\", \"run_id\": \"$B\"}"
$ post registered-models/alias '{"name": "credit", "alias": "champion", "version": "2"}'
$ post model-versions/transition-stage '{"name": "credit", "version": "1", "stage": "Staging", "archive_existing_versions": false}'

$ kiln --store $KILN_URL models list
NAME    LATEST  ALIASES     UPDATED              DESCRIPTION
credit  2       champion=2  * credit scoring (glob)
fraud                       * (glob)

$ kiln --store $KILN_URL models show credit
name         credit
description  credit scoring
aliases      champion=2
created      * (glob)
updated      * (glob)
versions:
VERSION  STAGE    ALIASES   STATUS  RUN ID                            CREATED              SOURCE
1        Staging            READY   [0-9a-f]{32}  [0-9: -]{19}  mlflow-artifacts:/1/[0-9a-f]+… (re)
2        None     champion  READY   [0-9a-f]{32}  [0-9: -]{19}  mlflow-artifacts:/1/[0-9a-f]+… (re)

$ kiln --store $KILN_URL models versions credit --json | jq -c '.model_versions[] | [.version, .current_stage, .aliases]'
["1","Staging",null]
["2","None",["champion"]]

$ kiln --store $KILN_URL models list --filter "name LIKE 'fr%'" --json | jq -r '.registered_models[].name'
fraud

$ kiln --store $KILN_URL models show nope
kiln: Registered Model with name=nope not found
[exit 3]

$ kiln --store $KILN_URL models versions nope
kiln: Registered Model with name=nope not found
[exit 3]

$ kiln --store $KILN_URL runs show 0123456789abcdef0123456789abcdef
kiln: Run with id=0123456789abcdef0123456789abcdef not found
[exit 3]

$ kiln --store $KILN_URL experiments show 42
kiln: no experiment with id or name '42'
[exit 3]

# Local and remote give the same output, table and JSON.
$ same() { diff <(kiln "$@" 2>&1; echo "exit $?") <(kiln --store $KILN_URL "$@" 2>&1; echo "exit $?") && echo same; }
$ same experiments list
same
$ same experiments show churn --json
same
$ same runs list
same
$ same runs list --json
same
$ same runs search "metrics.rmse < 0.45" --order-by "params.lr DESC"
same
$ same runs show $A
same
$ same runs show $B --json
same
$ same runs compare $A $B
same
$ same models list
same
$ same models list --json
same
$ same models show credit
same
$ same models show credit --json
same
$ same models versions credit
same
$ same runs show ffffffffffffffffffffffffffffffff
same
$ same models show missing
same

# The local store sees what was written through the server.
$ kiln runs list --experiment churn --json | jq -r '.runs[].info.run_name' | sort
run-a
run-b

# A server URL cannot serve a server.
$ kiln server --store $KILN_URL
kiln: kiln server needs a database store, not a server URL (http://127.0.0.1:*) (glob)
[exit 2]

# The port is taken.
$ kiln server --port ${KILN_URL##*:}
kiln: * (glob)
[exit 1]

# SIGTERM stops the server gracefully.
$ stop_server
kiln server stopped

# Passwords never reach the output.
$ out=$(kiln server --store postgresql://kiln:hunter2@127.0.0.1:1/kiln --objects shared --port 0 2>&1); echo "exit $?"
exit 1
$ [[ $out == *hunter2* ]] && echo "leaked: $out" || echo "$out" | head -1
kiln: * (glob)
