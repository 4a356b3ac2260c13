# kiln runs: create and log runs, then list, search, show, compare, delete and restore them.

$ kiln init > /dev/null && kiln experiments create churn
Created experiment 'churn' with id 1

$ A=$(kiln runs create --experiment churn --name xgb-a --tag team=risk) && echo $A
[0-9a-f]{32} (re)

$ B=$(kiln runs create --experiment 1 --name xgb-b --tag team=risk)
$ C=$(kiln runs create --name default-run)

$ kiln runs log $A --metric rmse=0.52 --metric auc=0.81 --param lr=0.1 --param depth=6
Logged 2 metric\(s\), 2 param\(s\), 0 tag\(s\) to run [0-9a-f]{32} (re)

$ kiln runs log $B --metric rmse=0.47 --param lr=0.3 --param depth=6 --tag note=tuned --step 2
Logged 1 metric\(s\), 2 param\(s\), 1 tag\(s\) to run [0-9a-f]{32} (re)

$ kiln runs log $A --param lr=0.2
kiln: Changing param values is not allowed. * (glob)
[exit 2]

$ kiln runs log $A --metric rmse=low
kiln: --metric rmse: 'low' is not a number
[exit 2]

$ kiln runs log $A
kiln: nothing to log: pass --metric, --param or --tag
[exit 2]

$ kiln runs end $A
Run [0-9a-f]{32} FINISHED (re)

$ kiln runs end $B --status FAILED --json | grep '"status"'
    "status": "FAILED",

# All experiments, newest first.
$ kiln runs list
RUN ID                            NAME         EXPERIMENT  STATUS    STARTED              DURATION
[0-9a-f]{32}  default-run  0           RUNNING   [0-9: -]{19} (re)
[0-9a-f]{32}  xgb-b        1           FAILED    [0-9: -]{19}  .+ (re)
[0-9a-f]{32}  xgb-a        1           FINISHED  [0-9: -]{19}  .+ (re)

$ kiln runs list --experiment churn --order-by "metrics.rmse ASC"
RUN ID                            NAME   EXPERIMENT  STATUS    STARTED              DURATION  metrics.rmse
[0-9a-f]{32}  xgb-b  1           FAILED    [0-9: -]{19}  .+  0.47 (re)
[0-9a-f]{32}  xgb-a  1           FINISHED  [0-9: -]{19}  .+  0.52 (re)

$ kiln runs search "metrics.rmse < 0.5 and params.depth = '6'"
RUN ID                            NAME   EXPERIMENT  STATUS  STARTED              DURATION  metrics.rmse  params.depth
[0-9a-f]{32}  xgb-b  1           FAILED  [0-9: -]{19}  .+  0.47          6 (re)

$ kiln runs search "tags.team = 'risk'" --max 1 --order-by "params.lr"
RUN ID                            NAME   EXPERIMENT  STATUS    STARTED              DURATION  params.lr
[0-9a-f]{32}  xgb-a  1           FINISHED  [0-9: -]{19}  .+  0.1 (re)

$ kiln runs search "metrics.rmse ~ 1"
kiln: * (glob)
[exit 2]

$ kiln runs list --experiment nope
kiln: no experiment with id or name 'nope'
[exit 3]

$ kiln runs search "params.lr = '0.3'" --json | jq -r '.runs[].info.run_name'
xgb-b

$ kiln runs show $A
run_id           [0-9a-f]{32} (re)
run_name         xgb-a
experiment_id    1
status           FINISHED
user_id          tester
start_time       * (glob)
end_time         * (glob)
duration         * (glob)
artifact_uri     mlflow-artifacts:/1/*/artifacts (glob)
lifecycle_stage  active
params:
  depth  6
  lr     0.1
metrics:
  auc   0.81
  rmse  0.52
tags:
  mlflow.runName  xgb-a
  team            risk

$ kiln runs show $A --json | jq -c '.run.data.params'
[{"key":"depth","value":"6"},{"key":"lr","value":"0.1"}]

$ kiln runs show 0123456789abcdef0123456789abcdef
kiln: Run with id=0123456789abcdef0123456789abcdef not found
[exit 3]

$ kiln runs compare $A $B
   FIELD          xgb-a                             xgb-b
   run_id         [0-9a-f]{32}  [0-9a-f]{32} (re)
   run_name       xgb-a                             xgb-b
   experiment_id  1                                 1
\*  status         FINISHED                          FAILED (re)
   user_id        tester                            tester
...
   params.depth   6                                 6
\*  params.lr      0.1                               0.3 (re)
\*  metrics.auc    0.81 (re)
\*  metrics.rmse   0.52                              0.47 (re)
\*  tags.note                                        tuned (re)
   tags.team      risk                              risk
(* marks fields that differ)

$ kiln runs compare $A $B --json | jq -c '.fields[] | select(.differs) | .field'
"run_name"
"status"
...
"params.lr"
"metrics.auc"
"metrics.rmse"
"tags.note"

$ kiln runs compare $A
kiln: runs compare needs at least two run ids, got 1
[exit 2]

$ kiln runs compare $A 0123456789abcdef0123456789abcdef
kiln: Run with id=0123456789abcdef0123456789abcdef not found
[exit 3]

$ kiln runs delete $C
Deleted run [0-9a-f]{32} (re)

$ kiln runs list --experiment Default
RUN ID  NAME  EXPERIMENT  STATUS  STARTED  DURATION

$ kiln runs list --experiment 0 --view deleted
RUN ID                            NAME         EXPERIMENT  STATUS   STARTED              DURATION
[0-9a-f]{32}  default-run  0           RUNNING  [0-9: -]{19} (re)

$ kiln runs restore $C --json
{}

$ kiln runs list --view all --json | jq '.runs | length'
3
