# kiln experiments against the local store.

$ kiln init > /dev/null

$ kiln experiments create churn --tag team=risk --tag owner=ana
Created experiment 'churn' with id 1

$ kiln experiments create fraud
Created experiment 'fraud' with id 2

$ kiln experiments create churn
kiln: Experiment(name=churn) already exists.
[exit 4]

$ kiln experiments create "" 
kiln: * (glob)
[exit 2]

$ kiln experiments create churn2 --tag novalue
kiln: --tag 'novalue': expected KEY=VALUE
[exit 2]

# Names sort by bytes: upper case first.
$ kiln experiments list --order-by name
ID  NAME     LIFECYCLE  CREATED              ARTIFACT LOCATION
0   Default  active     * (glob)
1   churn    active     * (glob)
2   fraud    active     * (glob)

$ kiln experiments list --filter "name LIKE 'ch%'"
ID  NAME   LIFECYCLE  CREATED              ARTIFACT LOCATION
1   churn  active     * (glob)

$ kiln experiments list --max 1 --order-by "name DESC"
ID  NAME   LIFECYCLE  CREATED              ARTIFACT LOCATION
2   fraud  active     * (glob)

$ kiln experiments list --json --filter "name = 'fraud'"
{
  "experiments": [
    {
      "artifact_location": "mlflow-artifacts:/2",
      "creation_time": [0-9]+, (re)
      "experiment_id": "2",
      "last_update_time": [0-9]+, (re)
      "lifecycle_stage": "active",
      "name": "fraud"
    }
  ]
}

$ kiln experiments list --filter "name = 'nothing'" --json
{}

$ kiln experiments show churn
experiment_id      1
name               churn
lifecycle_stage    active
artifact_location  mlflow-artifacts:/1
creation_time      [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8} (re)
last_update_time   [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8} (re)
tags:
  owner  ana
  team   risk

$ kiln experiments show 2 --json
{
  "experiment": {
    "artifact_location": "mlflow-artifacts:/2",
    "creation_time": [0-9]+, (re)
    "experiment_id": "2",
    "last_update_time": [0-9]+, (re)
    "lifecycle_stage": "active",
    "name": "fraud"
  }
}

$ kiln experiments show 99
kiln: no experiment with id or name '99'
[exit 3]

$ kiln experiments rename fraud fraud-v2
Renamed experiment 2 from 'fraud' to 'fraud-v2'

$ kiln experiments rename 2 churn
kiln: * (glob)
[exit 4]

$ kiln experiments delete fraud-v2
Deleted experiment 2 ('fraud-v2')

$ kiln experiments list
ID  NAME     LIFECYCLE  CREATED              ARTIFACT LOCATION
1   churn    active     * (glob)
0   Default  active     * (glob)

$ kiln experiments list --view deleted
ID  NAME      LIFECYCLE  CREATED              ARTIFACT LOCATION
2   fraud-v2  deleted    * (glob)

# A deleted experiment keeps its name.
$ kiln experiments create fraud-v2
kiln: * (glob)
[exit 4]

$ kiln experiments restore 2 --json
{}

$ kiln experiments show fraud-v2
experiment_id      2
name               fraud-v2
lifecycle_stage    active
...

$ kiln experiments delete 77
kiln: no experiment with id or name '77'
[exit 3]
