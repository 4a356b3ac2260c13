// MLflow 3.x logged models: the model entities a 3.x client's log_model creates in an experiment
// (POST /logged-models), uploads files for, then finalizes. Schema: migration 2 in
// src/kiln/store/schema.cc.
//
// Semantics follow MLflow 3.x's SQL store (mlflow/store/tracking/sqlalchemy_store.py):
//   - model_id is "m-" + 32 lowercase hex digits; the name is the request's, else a generated
//     "adjective-noun-NNN"; a name must not contain / : . % " ' (MLflow's rule).
//   - artifact_location is <experiment's artifact_location>/models/<model_id>/artifacts, so with
//     proxied artifacts "mlflow-artifacts:/<experiment_id>/models/<model_id>/artifacts".
//   - a new model is LOGGED_MODEL_PENDING; Finalize sets READY or UPLOAD_FAILED.
//   - Delete marks the model deleted (lifecycle_stage); Get and Search no longer see it, while
//     the other calls on it still work, as on MLflow.
//   - Params are immutable: logging a key again with the same value is fine, another value is
//     InvalidArgument. Tags are overwritten.
//   - Metrics are every point linked to the model (LogMetrics), each with its run and dataset.
//   - Tag, param and metric writes are store::Durability::kProcessCrash (logging, as on runs);
//     Create, Finalize and Delete are kPowerLoss.
// Errors: NotFound "Logged model with ID 'm-...' not found." for unknown ids, NotFound for an
// unknown experiment, InvalidArgument for bad input (naming the field and the value).
//
// Thread-safe: holds only the Database (and the Clock), which serialise what they must.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/clock.h"
#include "kiln/core/status.h"
#include "kiln/store/database.h"
#include "kiln/tracking/tracking_store.h"

namespace kiln::tracking {

enum class LoggedModelStatus { kPending, kReady, kUploadFailed };

// "LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED".
std::string_view LoggedModelStatusName(LoggedModelStatus status);
// Accepts the names above, the short forms "PENDING", "READY", "UPLOAD_FAILED" (any case), and
// protobuf's enum numbers 1, 2, 3. Anything else (including LOGGED_MODEL_STATUS_UNSPECIFIED, 0)
// is InvalidArgument naming the value and the accepted ones.
Result<LoggedModelStatus> ParseLoggedModelStatus(std::string_view text);

// One metric point linked to a logged model (MLflow's Metric with model_id).
struct LoggedModelMetric {
  std::string key;
  double value = 0;
  int64_t timestamp = 0;
  int64_t step = 0;
  std::string run_id;          // "" when none
  std::string dataset_name;    // "" when none
  std::string dataset_digest;  // "" when none
};

struct LoggedModel {
  std::string model_id;
  std::string experiment_id;
  std::string name;
  std::string artifact_location;
  int64_t creation_timestamp_ms = 0;
  int64_t last_updated_timestamp_ms = 0;
  LoggedModelStatus status = LoggedModelStatus::kPending;
  std::string status_message;
  std::string model_type;
  std::string source_run_id;
  std::string lifecycle_stage;  // "active" | "deleted"
  std::vector<Tag> tags;        // sorted by key
  std::vector<Tag> params;      // sorted by key
  std::vector<LoggedModelMetric> metrics;  // by key, then step, timestamp
};

struct CreateLoggedModelRequest {
  std::string experiment_id;  // required
  std::string name;           // empty: generated
  std::string model_type;
  std::string source_run_id;
  std::vector<Tag> params;
  std::vector<Tag> tags;
};

struct LoggedModelOrderBy {
  // An attribute (name, model_id, model_type, status, source_run_id, experiment_id,
  // creation_timestamp[_ms] / creation_time, last_updated_timestamp[_ms]) or "metrics.<key>"
  // (ordered by the model's latest point of that metric, by timestamp then step).
  std::string field_name;
  bool ascending = true;
  std::string dataset_name;    // metrics only: consider points on this dataset only
  std::string dataset_digest;  // metrics only, with dataset_name
};

struct LoggedModelDatasetFilter {
  std::string dataset_name;    // required
  std::string dataset_digest;  // "" = any digest
};

// Search over active (not deleted) models of the given experiments.
//
// filter: MLflow's grammar (search_filter.h), clauses joined by AND:
//   name, model_id, model_type, source_run_id, status     = != LIKE ILIKE IN NOT IN
//     (status values may be the full or the short name: 'READY' = 'LOGGED_MODEL_READY')
//   creation_timestamp[_ms], creation_time, last_updated_timestamp[_ms]   = != < <= > >=
//   metrics.<key>                       = != < <= > >=   (any point of that metric matches;
//                                                         restricted to `datasets` if given)
//   params.<key>, tags.<key>            = != LIKE ILIKE IN NOT IN
// Ordered by order_by, then creation_timestamp_ms DESC, then model_id.
struct LoggedModelSearchSpec {
  std::vector<std::string> experiment_ids;
  std::string filter;
  std::vector<LoggedModelDatasetFilter> datasets;
  std::vector<LoggedModelOrderBy> order_by;
  int64_t max_results = 100;  // MLflow's default; validated here: 1..kMaxLoggedModelSearchResults
  int64_t offset = 0;         // from DecodePageToken
};

inline constexpr int64_t kDefaultLoggedModelSearchResults = 100;
inline constexpr int64_t kMaxLoggedModelSearchResults = 50000;

class LoggedModelStore {
 public:
  // `database` and `clock` must outlive the store.
  explicit LoggedModelStore(store::Database* database, Clock* clock = Clock::Real())
      : database_(database), clock_(clock) {}

  // Errors: experiment unknown (NotFound) or deleted (InvalidArgument), bad name, bad tag or
  // param keys, duplicate param keys with different values.
  Result<LoggedModel> Create(const CreateLoggedModelRequest& request);
  // NotFound for unknown and deleted models.
  Result<LoggedModel> Get(const std::string& model_id);
  // Sets the status (and last_updated_timestamp_ms); returns the updated model.
  Result<LoggedModel> Finalize(const std::string& model_id, LoggedModelStatus status);
  Status Delete(const std::string& model_id);
  // Upserts the tags (the last value wins for a key repeated in `tags`).
  Status SetTags(const std::string& model_id, const std::vector<Tag>& tags);
  // NotFound when the model has no tag `key`.
  Status DeleteTag(const std::string& model_id, const std::string& key);
  Status LogParams(const std::string& model_id, const std::vector<Tag>& params);

  // Links metric points to the model: what the tracking API's log-metric and log-batch do for
  // entries that carry a model_id (MLflow 3.x Metric.model_id), in addition to logging them on
  // the run. Identical points (key, timestamp, step, run) are stored once. Metric names follow
  // the run metric rules (tracking_validation.h). All-or-nothing.
  Status LogMetrics(const std::string& model_id, const std::vector<LoggedModelMetric>& metrics);

  Result<Page<LoggedModel>> Search(const LoggedModelSearchSpec& spec);

 private:
  store::Database* database_;
  Clock* clock_;
};

// LogMetrics' work inside the caller's write transaction `tx` (TrackingStore's log-metric and
// log-batch, so a batch is logged on its run and its models all-or-nothing). NotFound when
// `model_id` names no model; names are not validated here (the caller has done it).
Status WriteLoggedModelMetrics(store::Transaction& tx, const std::string& model_id,
                               const std::vector<LoggedModelMetric>& metrics);

}  // namespace kiln::tracking
