#!/usr/bin/env bash
# `make demo`: kiln's tracking server and registry end to end on the embedded default (SQLite and
# a local folder). Until the pipeline lands, the "training" is a small grid of logged runs.
set -euo pipefail
kiln=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
work=$(mktemp -d /tmp/kiln-demo-XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
api() {  # api PATH JSON -> reply
  curl -sS -X POST -H 'Content-Type: application/json' --data "$2" "$url/api/2.0/mlflow$1"
}

cd "$work"
step kiln init
"$kiln" init
step "kiln data commit credit.csv -m jan   (a versioned table: schema inferred, profile stored)"
python3 - <<'PY'
import random
random.seed(7)
def write(path, rows, shift):
    with open(path, "w") as f:
        f.write("id,age,income,region,defaulted\n")
        for i in range(rows):
            age = random.randint(21, 70)
            income = round(random.gauss(52000 + shift, 9000), 2)
            f.write(f"{i},{age},{income},{random.choice(['north','south','east','west'])},{random.random() < 0.1}\n")
write("credit.csv", 20000, 0)
write("credit_feb.csv", 21000, 6000)
PY
"$kiln" data commit credit.csv -m "jan" --key id
step "kiln data show main credit --profile"
"$kiln" data show main credit --profile
step "kiln data commit credit_feb.csv --table credit -m feb   (version 2 of table credit)"
"$kiln" data commit credit_feb.csv --table credit -m "feb"
step "kiln data log; kiln data diff main~1 main --max-rows 3"
"$kiln" data log
"$kiln" data diff main~1 main --max-rows 3
step "kiln data validate main --rules rules.yaml   (income drifted: the KS bound against jan fails)"
cat > rules.yaml <<'YAML'
tables:
  credit:
    row_count: {min: 1000}
    columns:
      age: {type: int64, min: 18, max: 100, not_null: 1.0}
      income:
        drift: {reference: main~1, max_ks: 0.1}
YAML
"$kiln" data validate main --rules rules.yaml || echo "(exit $?: validation failed, as expected)"
step "kiln fsck"
"$kiln" fsck

step "kiln server --port $port &"
"$kiln" server --port "$port" --log-level warning &
server_pid=$!
for _ in $(seq 50); do curl -sf "$url/health" >/dev/null && break; sleep 0.1; done
echo "server is up: $(curl -s "$url/health"), version $(curl -s "$url/version")"

step "an MLflow client logs a grid of 6 training runs (REST calls, as mlflow.log_* makes them)"
exp=$(api /experiments/create '{"name":"credit-risk"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["experiment_id"])')
i=0
now_ms=$(date +%s%3N)
for model in xgb linear; do
  for depth in 3 6 9; do
    i=$((i + 1))
    run=$(api /runs/create "{\"experiment_id\":\"$exp\",\"run_name\":\"$model-d$depth\",\"start_time\":$((now_ms + i * 1000))}" \
          | python3 -c 'import json,sys; print(json.load(sys.stdin)["run"]["info"]["run_id"])')
    auc=$(python3 -c "print(round(0.80 + ($depth/100.0) * (1.5 if '$model'=='xgb' else 0.6), 4))")
    metrics=$(python3 -c "
import json
print(json.dumps([{'key':'auc','value':round($auc-0.05+0.01*s,4),'timestamp':$now_ms+s,'step':s} for s in range(6)]))")
    api /runs/log-batch "{\"run_id\":\"$run\",\"params\":[{\"key\":\"model\",\"value\":\"$model\"},{\"key\":\"max_depth\",\"value\":\"$depth\"}],\"metrics\":$metrics}" >/dev/null
    api /runs/update "{\"run_id\":\"$run\",\"status\":\"FINISHED\",\"end_time\":$((now_ms + i * 1000 + 60000))}" >/dev/null
  done
done
echo "logged $i runs into experiment $exp"

step "kiln runs list --experiment credit-risk"
"$kiln" runs list --store "$url" --experiment credit-risk
step "kiln runs search --experiment credit-risk --filter \"metrics.auc > 0.9 AND params.model = 'xgb'\" --order-by 'metrics.auc DESC'"
"$kiln" runs search --store "$url" --experiment credit-risk --filter "metrics.auc > 0.9 AND params.model = 'xgb'" --order-by 'metrics.auc DESC'
best=$("$kiln" runs search --store "$url" --experiment credit-risk --order-by 'metrics.auc DESC' --max 2 --json \
       | python3 -c 'import json,sys; d=json.load(sys.stdin); print(" ".join(r["info"]["run_id"] for r in d["runs"]))')
step "kiln runs compare (the two best runs)"
"$kiln" runs compare --store "$url" $best

step "register the best run's model and point the production alias at it"
top=${best%% *}
api /registered-models/create '{"name":"credit-risk"}' >/dev/null
api /model-versions/create "{\"name\":\"credit-risk\",\"source\":\"mlflow-artifacts:/$exp/$top/artifacts/model\",\"run_id\":\"$top\"}" >/dev/null
api /registered-models/alias '{"name":"credit-risk","alias":"production","version":"1"}' >/dev/null
step "kiln models show credit-risk"
"$kiln" models show --store "$url" credit-risk

step "the same store, read directly without the server: kiln experiments list"
"$kiln" experiments list
echo
echo "demo finished: store in $work/.kiln (kept for you to explore: cd $work && $kiln runs list --experiment credit-risk)"
