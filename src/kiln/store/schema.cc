#include "kiln/store/schema.h"

#include <cassert>
#include <string>

namespace kiln::store {
namespace {

// Version 1: tracking (experiments, runs, metrics, params, tags, inputs) and the model registry.
//
// Conventions: timestamps are BIGINT milliseconds since the epoch; booleans are INTEGER 0/1;
// doubles are DOUBLE PRECISION with an is_nan flag where a NaN must round-trip (SQLite stores NaN
// as NULL). Ids handed out by kiln come from id_sequences so both backends allocate them alike.
//
// metrics holds every logged point (the history); latest_metrics holds, per run and key, the
// point MLflow reports as the run's value (max step, then max timestamp, then max value), so
// search-runs filters and orders on an indexed table of one row per run and key.
//
// registered_models.last_version is the highest version number ever handed out for the model, so
// a deleted version's number is never reused (a prediction's version must name one model).
constexpr std::string_view kV1 = R"sql(
CREATE TABLE id_sequences (
  name TEXT PRIMARY KEY,
  value BIGINT NOT NULL
);
CREATE TABLE experiments (
  experiment_id BIGINT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  artifact_location TEXT NOT NULL DEFAULT '',
  lifecycle_stage TEXT NOT NULL DEFAULT 'active',
  creation_time BIGINT,
  last_update_time BIGINT
);
CREATE TABLE experiment_tags (
  experiment_id BIGINT NOT NULL REFERENCES experiments(experiment_id),
  key TEXT NOT NULL,
  value TEXT,
  PRIMARY KEY (experiment_id, key)
);
CREATE TABLE runs (
  run_uuid TEXT PRIMARY KEY,
  name TEXT,
  experiment_id BIGINT NOT NULL REFERENCES experiments(experiment_id),
  user_id TEXT,
  status TEXT NOT NULL DEFAULT 'RUNNING',
  start_time BIGINT,
  end_time BIGINT,
  lifecycle_stage TEXT NOT NULL DEFAULT 'active',
  artifact_uri TEXT,
  deleted_time BIGINT
);
CREATE INDEX runs_experiment_start ON runs (experiment_id, start_time DESC, run_uuid);
CREATE TABLE metrics (
  run_uuid TEXT NOT NULL REFERENCES runs(run_uuid),
  key TEXT NOT NULL,
  value DOUBLE PRECISION NOT NULL,
  is_nan INTEGER NOT NULL DEFAULT 0,
  timestamp BIGINT NOT NULL,
  step BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX metrics_run_key_step ON metrics (run_uuid, key, step, timestamp);
CREATE TABLE latest_metrics (
  run_uuid TEXT NOT NULL REFERENCES runs(run_uuid),
  key TEXT NOT NULL,
  value DOUBLE PRECISION NOT NULL,
  is_nan INTEGER NOT NULL DEFAULT 0,
  timestamp BIGINT NOT NULL,
  step BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (run_uuid, key)
);
CREATE INDEX latest_metrics_key_value ON latest_metrics (key, value, is_nan, run_uuid);
CREATE TABLE params (
  run_uuid TEXT NOT NULL REFERENCES runs(run_uuid),
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (run_uuid, key)
);
CREATE INDEX params_key_value ON params (key, value);
CREATE TABLE tags (
  run_uuid TEXT NOT NULL REFERENCES runs(run_uuid),
  key TEXT NOT NULL,
  value TEXT,
  PRIMARY KEY (run_uuid, key)
);
CREATE INDEX tags_key_value ON tags (key, value);
CREATE TABLE datasets (
  dataset_uuid TEXT PRIMARY KEY,
  experiment_id BIGINT NOT NULL REFERENCES experiments(experiment_id),
  name TEXT NOT NULL,
  digest TEXT NOT NULL,
  source_type TEXT,
  source TEXT,
  schema TEXT,
  profile TEXT,
  UNIQUE (experiment_id, name, digest)
);
CREATE TABLE inputs (
  input_uuid TEXT PRIMARY KEY,
  source_type TEXT NOT NULL,
  source_id TEXT NOT NULL,
  destination_type TEXT NOT NULL,
  destination_id TEXT NOT NULL,
  UNIQUE (source_type, source_id, destination_type, destination_id)
);
CREATE INDEX inputs_destination ON inputs (destination_type, destination_id);
CREATE TABLE input_tags (
  input_uuid TEXT NOT NULL REFERENCES inputs(input_uuid),
  name TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (input_uuid, name)
);
CREATE TABLE registered_models (
  name TEXT PRIMARY KEY,
  creation_time BIGINT,
  last_updated_time BIGINT,
  description TEXT,
  user_id TEXT,
  last_version BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE registered_model_tags (
  name TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT,
  PRIMARY KEY (name, key)
);
CREATE TABLE model_versions (
  name TEXT NOT NULL,
  version BIGINT NOT NULL,
  creation_time BIGINT,
  last_updated_time BIGINT,
  description TEXT,
  user_id TEXT,
  current_stage TEXT NOT NULL DEFAULT 'None',
  source TEXT,
  run_id TEXT,
  run_link TEXT,
  status TEXT NOT NULL DEFAULT 'READY',
  status_message TEXT,
  storage_location TEXT,
  PRIMARY KEY (name, version)
);
CREATE INDEX model_versions_run ON model_versions (run_id);
CREATE TABLE model_version_tags (
  name TEXT NOT NULL,
  version BIGINT NOT NULL,
  key TEXT NOT NULL,
  value TEXT,
  PRIMARY KEY (name, version, key)
);
CREATE TABLE registered_model_aliases (
  name TEXT NOT NULL,
  alias TEXT NOT NULL,
  version BIGINT NOT NULL,
  PRIMARY KEY (name, alias)
);
CREATE TABLE registered_model_alias_history (
  name TEXT NOT NULL,
  alias TEXT NOT NULL,
  version BIGINT,
  changed_at BIGINT NOT NULL,
  sequence BIGINT NOT NULL,
  PRIMARY KEY (name, alias, sequence)
)
)sql";


// Version 2: MLflow 3.x logged models (/logged-models), the models a 3.x client's log_model
// creates before it uploads the files.
//
// logged_models.status holds the LoggedModelStatus name ("LOGGED_MODEL_PENDING", "..._READY",
// "..._UPLOAD_FAILED"). Deleting a model only sets lifecycle_stage = 'deleted', as MLflow does.
// logged_model_metrics holds every point linked to a model (a 3.x log-metric / log-batch entry
// carrying model_id); run_id is '' when no run was named, so the unique key below also dedupes
// those points (a client retry logs nothing twice). NaN is stored as 0 with is_nan = 1.
// Tag and param values are unbounded text, so they get no index (PostgreSQL's B-tree rejects
// entries over ~2.7 kB); searches on them start from the models of the requested experiments.
constexpr std::string_view kV2 = R"sql(
CREATE TABLE logged_models (
  model_id TEXT PRIMARY KEY,
  experiment_id BIGINT NOT NULL REFERENCES experiments(experiment_id),
  name TEXT NOT NULL,
  artifact_location TEXT NOT NULL,
  creation_timestamp_ms BIGINT NOT NULL,
  last_updated_timestamp_ms BIGINT NOT NULL,
  status TEXT NOT NULL,
  lifecycle_stage TEXT NOT NULL DEFAULT 'active',
  model_type TEXT,
  source_run_id TEXT,
  status_message TEXT
);
CREATE INDEX logged_models_experiment_created
  ON logged_models (experiment_id, creation_timestamp_ms DESC, model_id);
CREATE TABLE logged_model_tags (
  model_id TEXT NOT NULL REFERENCES logged_models(model_id),
  tag_key TEXT NOT NULL,
  tag_value TEXT NOT NULL,
  PRIMARY KEY (model_id, tag_key)
);
CREATE TABLE logged_model_params (
  model_id TEXT NOT NULL REFERENCES logged_models(model_id),
  param_key TEXT NOT NULL,
  param_value TEXT NOT NULL,
  PRIMARY KEY (model_id, param_key)
);
CREATE TABLE logged_model_metrics (
  model_id TEXT NOT NULL REFERENCES logged_models(model_id),
  metric_name TEXT NOT NULL,
  metric_timestamp_ms BIGINT NOT NULL,
  metric_step BIGINT NOT NULL DEFAULT 0,
  metric_value DOUBLE PRECISION NOT NULL,
  is_nan INTEGER NOT NULL DEFAULT 0,
  run_id TEXT NOT NULL DEFAULT '',
  dataset_name TEXT,
  dataset_digest TEXT,
  UNIQUE (model_id, metric_name, metric_timestamp_ms, metric_step, run_id)
);
CREATE INDEX logged_model_metrics_name_value
  ON logged_model_metrics (metric_name, metric_value, model_id)
)sql";


// Version 3: versioned datasets (the data layer). Bytes live in the object store; these tables
// say which objects exist (data_objects: an object counts as stored only once its row is here,
// written after the object store's Sync), which commits exist, and where branches and tags point.
// data_commits.parents is the parent ids separated by spaces, first parent first.
// data_refs holds branches and tags in one namespace (kind 'branch' or 'tag').
constexpr std::string_view kV3 = R"sql(
CREATE TABLE data_commits (
  commit_id TEXT PRIMARY KEY,
  parents TEXT NOT NULL,
  message TEXT NOT NULL,
  author TEXT NOT NULL,
  created_ms BIGINT NOT NULL
);
CREATE TABLE data_entries (
  commit_id TEXT NOT NULL REFERENCES data_commits(commit_id),
  name TEXT NOT NULL,
  file_name TEXT NOT NULL,
  format TEXT NOT NULL,
  schema_json TEXT NOT NULL,
  key_column TEXT,
  row_count BIGINT NOT NULL,
  byte_count BIGINT NOT NULL,
  manifest_id TEXT NOT NULL,
  profile_id TEXT,
  PRIMARY KEY (commit_id, name)
);
CREATE TABLE data_refs (
  name TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  commit_id TEXT NOT NULL,
  updated_ms BIGINT NOT NULL
);
CREATE TABLE data_objects (
  object_id TEXT PRIMARY KEY,
  raw_size BIGINT NOT NULL,
  stored_size BIGINT NOT NULL,
  base_id TEXT,
  depth INTEGER NOT NULL,
  created_ms BIGINT NOT NULL
);
CREATE TABLE data_rules (
  branch TEXT PRIMARY KEY,
  rules TEXT NOT NULL,
  updated_ms BIGINT NOT NULL
)
)sql";

// Version 4: the metric history keyed by the point itself. MLflow's metrics table has a primary
// key over all of a point's fields, so an identical point (a client retry) is stored once; kiln
// enforced that with a lookup before every insert. The key (run_uuid, key, step, timestamp,
// value, is_nan) now does it (INSERT ... ON CONFLICT DO NOTHING), and it also serves
// get-history's (run_uuid, key) range in (step, timestamp, value) order, so the old index goes.
// On SQLite the table is rebuilt WITHOUT ROWID, clustered on that key: one B-tree per point
// instead of a table and an index, which halves the pages a batch of points dirties.
// NaN is value 0 with is_nan 1 (as before), so it never compares equal to a logged 0.
// The history loses its foreign key to runs: the check ran once per point (on PostgreSQL a
// trigger and a query per row, most of a 1,000-point batch's cost), while every writer of metrics
// (TrackingStore's log-metric and log-batch) reads the run in the same transaction first, and
// runs are never deleted, only marked deleted.
constexpr std::string_view kV4Sqlite = R"sql(
CREATE TABLE metrics_v4 (
  run_uuid TEXT NOT NULL,
  key TEXT NOT NULL,
  value DOUBLE PRECISION NOT NULL,
  is_nan INTEGER NOT NULL DEFAULT 0,
  timestamp BIGINT NOT NULL,
  step BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (run_uuid, key, step, timestamp, value, is_nan)
) WITHOUT ROWID;
INSERT INTO metrics_v4 (run_uuid, key, value, is_nan, timestamp, step)
  SELECT run_uuid, key, value, is_nan, timestamp, step FROM metrics WHERE true
  ON CONFLICT DO NOTHING;
DROP TABLE metrics;
ALTER TABLE metrics_v4 RENAME TO metrics
)sql";

// PostgreSQL keeps the heap and swaps the index for the primary key (after removing duplicates,
// which concurrent writers of older versions could in principle have left).
constexpr std::string_view kV4Postgres = R"sql(
DELETE FROM metrics a USING metrics b
  WHERE a.ctid > b.ctid AND a.run_uuid = b.run_uuid AND a.key = b.key AND a.step = b.step
  AND a.timestamp = b.timestamp AND a.value = b.value AND a.is_nan = b.is_nan;
ALTER TABLE metrics ADD CONSTRAINT metrics_pkey
  PRIMARY KEY (run_uuid, key, step, timestamp, value, is_nan);
DROP INDEX metrics_run_key_step;
ALTER TABLE metrics DROP CONSTRAINT IF EXISTS metrics_run_uuid_fkey
)sql";

// Version 5: the metric history in chunks. A log-batch writes one row per (run, key) holding
// all of that key's points of the batch (a 1,000-point batch of 10 keys is 10 rows, not 1,000:
// the row count, not the bytes, is what a batch's insert costs on both backends). A chunk's
// points are text, one per line, "step timestamp value", the value in shortest round-trip form
// or nan / inf / -inf (text so that both backends store it alike; about 30 bytes a point).
// chunk_id is random, so concurrent writers of one key never collide. Identical points are
// collapsed when the history is read (MLflow stores a repeated point once); points logged
// before version 5 stay in `metrics` and are read together with the chunks.
// runs.revision counts the writes of a run's children (params, tags, latest metrics, inputs):
// every such write increments it in its transaction, so a cached copy of the children is
// current exactly when its revision is (tracking's RunChildrenCache).
constexpr std::string_view kV5 = R"sql(
ALTER TABLE runs ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
CREATE TABLE metric_chunks (
  run_uuid TEXT NOT NULL,
  key TEXT NOT NULL,
  chunk_id BIGINT NOT NULL,
  point_count INTEGER NOT NULL,
  min_step BIGINT NOT NULL,
  max_step BIGINT NOT NULL,
  points TEXT NOT NULL,
  PRIMARY KEY (run_uuid, key, chunk_id)
);
)sql";

// SQLite stores these tables clustered on their primary key (WITHOUT ROWID), so the rows of one
// run sit together: loading a page of 1,000 runs' params, tags and latest metrics reads about half
// as many pages. PostgreSQL has no such clause; its text is the shared one.
std::string SqliteClustered(std::string_view sql, const std::vector<std::string_view>& tables) {
  std::string out(sql);
  for (std::string_view table : tables) {
    std::string head = "CREATE TABLE " + std::string(table) + " (";
    size_t start = out.find(head);
    assert(start != std::string::npos);
    size_t end = out.find("\n);", start);
    assert(end != std::string::npos);
    out.insert(end + 2, " WITHOUT ROWID");
  }
  return out;
}

}  // namespace

const std::vector<Migration>& Migrations() {
  static const std::string kV1Sqlite =
      SqliteClustered(kV1, {"params", "tags", "latest_metrics", "experiment_tags"});
  static const std::string kV5Sqlite = SqliteClustered(kV5, {"metric_chunks"});
  static const std::vector<Migration> kMigrations = {
      {1, "tracking and model registry", kV1Sqlite, kV1},
      {2, "logged models (MLflow 3.x)", kV2, ""},
      {3, "versioned datasets", kV3, ""},
      {4, "metric history keyed by the point", kV4Sqlite, kV4Postgres},
      {5, "metric history in chunks, run revisions", kV5Sqlite, kV5},
  };
  return kMigrations;
}

}  // namespace kiln::store
