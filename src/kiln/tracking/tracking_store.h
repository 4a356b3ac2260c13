// Experiments, runs, metrics, params, tags and dataset inputs, on the metadata database.
//
// Semantics follow MLflow 2.x's SQL store (shared/reference/mlflow-rest-api.md): the validation
// rules and limits, "Changing param values is not allowed", truncation of long param and tag
// values, the Default experiment "0", run_name mirrored in the mlflow.runName tag, deleted
// experiments keeping their names. Every method validates its input and returns
// InvalidArgument with MLflow's message, NotFound for unknown ids, AlreadyExists for taken names.
//
// Thread-safe: one TrackingStore serves all threads of a server; it holds no mutable state besides
// the Database, which serialises what it must.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kiln/core/clock.h"
#include "kiln/core/status.h"
#include "kiln/store/database.h"
#include "kiln/tracking/search.h"

namespace kiln::tracking {

struct Tag {
  std::string key;
  std::string value;
};

struct Experiment {
  std::string experiment_id;
  std::string name;
  std::string artifact_location;
  std::string lifecycle_stage;  // "active" | "deleted"
  int64_t creation_time = 0;
  int64_t last_update_time = 0;
  std::vector<Tag> tags;
};

struct Metric {
  std::string key;
  double value = 0;
  int64_t timestamp = 0;
  int64_t step = 0;
  // MLflow 3.x: a point logged with a model_id is also linked to that logged model (with the
  // dataset it was computed on, if named). Written only; runs report their metrics without these.
  // (Initialised so that the brace-initialised Metric{key, value, timestamp, step} stays warning-free.)
  std::string model_id = {};
  std::string dataset_name = {};
  std::string dataset_digest = {};
};

struct RunInfo {
  std::string run_id;
  std::string run_name;
  std::string experiment_id;
  std::string user_id;
  std::string status;  // RUNNING | SCHEDULED | FINISHED | FAILED | KILLED
  int64_t start_time = 0;
  std::optional<int64_t> end_time;
  std::string artifact_uri;
  std::string lifecycle_stage;
};

struct Dataset {
  std::string name;
  std::string digest;
  std::string source_type;
  std::string source;
  std::string schema;
  std::string profile;
};

struct DatasetInput {
  std::vector<Tag> tags;
  Dataset dataset;
};

struct Run {
  RunInfo info;
  std::vector<Metric> metrics;  // latest value per key
  std::vector<Tag> params;
  std::vector<Tag> tags;
  std::vector<DatasetInput> inputs;
};

struct CreateRunRequest {
  std::string experiment_id;  // empty = "0"
  std::string user_id;
  std::string run_name;       // empty: taken from the mlflow.runName tag, else generated
  std::optional<int64_t> start_time;
  std::vector<Tag> tags;
};

struct UpdateRunRequest {
  std::string run_id;
  std::optional<std::string> status;
  std::optional<int64_t> end_time;
  std::optional<std::string> run_name;
};

struct LogBatchRequest {
  std::string run_id;
  std::vector<Metric> metrics;
  std::vector<Tag> params;
  std::vector<Tag> tags;
};

template <typename T>
struct Page {
  std::vector<T> items;
  std::string next_page_token;  // empty when this is the last page
};

class TrackingStore {
 public:
  // `artifact_root` is the folder under which run artifacts live; experiments get
  // artifact_location "mlflow-artifacts:/<id>" (proxied), runs "mlflow-artifacts:/<exp>/<run>/artifacts".
  // Creates the Default experiment "0" if missing. `database` and `clock` must outlive the store.
  static Result<std::unique_ptr<TrackingStore>> Open(store::Database* database,
                                                     Clock* clock = Clock::Real());

  // Experiments.
  Result<std::string> CreateExperiment(const std::string& name,
                                       const std::string& artifact_location,
                                       const std::vector<Tag>& tags);
  Result<Experiment> GetExperiment(const std::string& experiment_id);
  Result<Experiment> GetExperimentByName(const std::string& name);
  Result<Page<Experiment>> SearchExperiments(const ExperimentSearchSpec& spec);
  Status RenameExperiment(const std::string& experiment_id, const std::string& new_name);
  Status DeleteExperiment(const std::string& experiment_id);
  Status RestoreExperiment(const std::string& experiment_id);
  Status SetExperimentTag(const std::string& experiment_id, const Tag& tag);
  Status DeleteExperimentTag(const std::string& experiment_id, const std::string& key);

  // Runs.
  Result<Run> CreateRun(const CreateRunRequest& request);
  Result<Run> GetRun(const std::string& run_id);
  Result<RunInfo> UpdateRun(const UpdateRunRequest& request);
  Status DeleteRun(const std::string& run_id);
  Status RestoreRun(const std::string& run_id);
  // Metrics carrying a model_id are linked to that logged model in the same transaction
  // (NotFound if there is no such model), as MLflow 3.x does.
  Status LogMetric(const std::string& run_id, const Metric& metric);
  Status LogParam(const std::string& run_id, const Tag& param);
  Status SetTag(const std::string& run_id, const Tag& tag);
  Status DeleteTag(const std::string& run_id, const std::string& key);
  // All-or-nothing: one transaction; limits as MLflow (1000 metrics, 100 params, 100 tags).
  Status LogBatch(const LogBatchRequest& request);
  Status LogInputs(const std::string& run_id, const std::vector<DatasetInput>& inputs);
  // Stores model_json (MLflow's log-model) as an entry of the run's mlflow.log-model.history tag.
  Status LogModel(const std::string& run_id, const std::string& model_json);
  // A page of one key's history in (step, timestamp, value) order; identical points once.
  Result<Page<Metric>> GetMetricHistory(const std::string& run_id, const std::string& metric_key,
                                        int64_t max_results, const std::string& page_token);
  // The whole history of one key, in one read (the same points as every page together).
  Result<std::vector<Metric>> GetFullMetricHistory(const std::string& run_id,
                                                   const std::string& metric_key);
  Result<Page<Run>> SearchRuns(const RunSearchSpec& spec);

 private:
  TrackingStore(store::Database* database, Clock* clock);
  store::Database* database_;
  Clock* clock_;
  // The children of runs that searches loaded, reused while their revision holds.
  std::unique_ptr<RunChildrenCache> run_cache_;
};

}  // namespace kiln::tracking
