// TrackingStore on the metadata database. Every public method is one Database::Read or Write;
// writes prepare everything that needs randomness or the clock (ids, names, timestamps) before
// the transaction, because Write may run its body more than once.
//
// Storage rules (schema: src/kiln/store/schema.cc):
//   metrics         every point, NaN stored as value 0 with is_nan 1; identical points (run, key,
//                   timestamp, step, value) are stored once, as MLflow's primary key does.
//   latest_metrics  per (run, key) the point with the greatest (step, timestamp, stored value),
//                   maintained by one upsert per key per write whose WHERE keeps the greater one,
//                   so concurrent writers never lose the latest point.
//   params          immutable once logged: a different value is rejected, the same one ignored.
//   tags            upserted; "mlflow.runName" is kept equal to runs.name.
#include "kiln/tracking/tracking_store.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "kiln/core/ids.h"
#include "kiln/core/json.h"
#include "kiln/tracking/logged_model_store.h"
#include "kiln/tracking/tracking_validation.h"

namespace kiln::tracking {
namespace {

// Tracking data (experiments, runs, metrics, params, tags) is written with kProcessCrash
// durability: it survives kill -9 of any kiln process, and skips the per-commit fsync that
// registry changes pay (DESIGN.md, Storage: metric logging may lose its last moments on power
// loss; `--sync full` makes it wait for the fsync too).
Status WriteTracking(store::Database* database,
                     const std::function<Status(store::Transaction&)>& body) {
  return database->Write(body, store::Durability::kProcessCrash);
}

using store::Rows;
using store::Transaction;
using store::Value;

constexpr std::string_view kRunNameTag = "mlflow.runName";
constexpr std::string_view kLoggedModelsTag = "mlflow.log-model.history";
constexpr std::string_view kActive = "active";
constexpr std::string_view kDeleted = "deleted";
constexpr int64_t kDefaultExperimentId = 0;
constexpr int64_t kDefaultMetricHistoryPage = 25000;
// Ids per IN (...) list: far below SQLite's and PostgreSQL's limits on bound parameters.
constexpr size_t kInListChunk = 500;

constexpr std::string_view kRunColumns =
    "run_uuid, name, experiment_id, user_id, status, start_time, end_time, artifact_uri, "
    "lifecycle_stage";
constexpr std::string_view kExperimentColumns =
    "experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time";

std::string Placeholders(size_t count) {
  std::string out;
  out.reserve(count * 3);
  for (size_t i = 0; i < count; ++i) out += i == 0 ? "?" : ", ?";
  return out;
}

std::string DefaultArtifactLocation(int64_t experiment_id) {
  return "mlflow-artifacts:/" + std::to_string(experiment_id);
}

// MLflow's append_to_uri_path: one '/' between the parts.
std::string AppendUriPath(std::string base, std::string_view tail) {
  if (!base.empty() && base.back() == '/') base.pop_back();
  return base + "/" + std::string(tail);
}

Status ExperimentNotFound(std::string_view experiment_id) {
  return NotFound("No Experiment with id=" + std::string(experiment_id) + " exists");
}

Status RunNotFound(std::string_view run_id) {
  return NotFound("Run with id=" + std::string(run_id) + " not found");
}

// Experiment ids are integers in the database; any other text names no experiment.
Result<int64_t> ParseExperimentId(std::string_view text) {
  int64_t id = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
    return ExperimentNotFound(text);
  }
  return id;
}

Status CheckRunActive(const RunInfo& info) {
  if (info.lifecycle_stage == kActive) return Status::Ok();
  return InvalidArgument("The run " + info.run_id +
                         " must be in the 'active' state. Current state is " +
                         info.lifecycle_stage + ".");
}

Status CheckExperimentActive(const Experiment& experiment) {
  if (experiment.lifecycle_stage == kActive) return Status::Ok();
  return InvalidArgument("The experiment " + experiment.experiment_id +
                         " must be in the 'active' state. Current state is " +
                         experiment.lifecycle_stage + ".");
}

Status CheckRunIdShape(const std::string& run_id) {
  if (IsValidRunId(run_id)) return Status::Ok();
  return InvalidArgument("Invalid run ID: '" + run_id + "'");
}

// Python's repr() of a str, for messages that quote MLflow's.
std::string PythonRepr(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\\' || c == '\'') out += '\\';
    out += c;
  }
  return out + "'";
}

// The value a metric is stored with: NaN has no portable SQL form, so it is 0 with is_nan = 1.
struct StoredMetric {
  std::string_view key;
  double value;
  int64_t is_nan;
  int64_t timestamp;
  int64_t step;

  auto Identity() const { return std::tie(key, timestamp, step, value, is_nan); }
  // MLflow's rule for the latest point: greatest (step, timestamp, value).
  bool IsLaterThan(const StoredMetric& other) const {
    return std::tie(step, timestamp, value) > std::tie(other.step, other.timestamp, other.value);
  }
};

StoredMetric ToStored(const Metric& metric) {
  bool nan = std::isnan(metric.value);
  return {metric.key, nan ? 0.0 : metric.value, nan ? 1 : 0, metric.timestamp, metric.step};
}

double FromStored(double value, int64_t is_nan) {
  return is_nan != 0 ? std::numeric_limits<double>::quiet_NaN() : value;
}

// --- Reading -----------------------------------------------------------------------------------

RunInfo ReadRunInfo(const Rows& rows, size_t i) {
  RunInfo info;
  info.run_id = rows.Text(i, 0);
  info.run_name = rows.Text(i, 1);
  info.experiment_id = std::to_string(rows.Int(i, 2));
  info.user_id = rows.Text(i, 3);
  info.status = rows.Text(i, 4);
  info.start_time = rows.Int(i, 5);
  info.end_time = rows.OptInt(i, 6);
  info.artifact_uri = rows.Text(i, 7);
  info.lifecycle_stage = rows.Text(i, 8);
  return info;
}

Result<RunInfo> LoadRunInfo(Transaction& tx, const std::string& run_id) {
  KILN_ASSIGN_OR_RETURN(
      Rows rows,
      tx.Query("SELECT " + std::string(kRunColumns) + " FROM runs WHERE run_uuid = ?", {run_id}));
  if (rows.empty()) return RunNotFound(run_id);
  return ReadRunInfo(rows, 0);
}

// LoadRunInfo for a write of the run's children: the row as returned by the statement that marks
// them changed (runs.revision; see RunChildrenCache in search.h), one statement for both. Every
// write of a run's params, tags, latest metrics or inputs goes through it (UpdateRun's rename
// increments the revision in its own UPDATE).
Result<RunInfo> LoadRunInfoForWrite(Transaction& tx, const std::string& run_id) {
  KILN_ASSIGN_OR_RETURN(Rows rows, tx.Query("UPDATE runs SET revision = revision + 1 WHERE "
                                            "run_uuid = ? RETURNING " + std::string(kRunColumns),
                                            {run_id}));
  if (rows.empty()) return RunNotFound(run_id);
  return ReadRunInfo(rows, 0);
}

// Loads whole runs (info, latest metrics, params, tags, inputs) for `run_ids`, in that order, with
// a fixed number of queries per chunk of ids rather than per run. Unknown ids are skipped.
Result<std::vector<Run>> LoadRuns(Transaction& tx, const std::vector<std::string>& run_ids) {
  std::vector<Run> runs;
  runs.reserve(run_ids.size());
  for (size_t begin = 0; begin < run_ids.size(); begin += kInListChunk) {
    size_t end = std::min(run_ids.size(), begin + kInListChunk);
    std::vector<Value> ids(run_ids.begin() + static_cast<ptrdiff_t>(begin),
                           run_ids.begin() + static_cast<ptrdiff_t>(end));
    std::string in = "(" + Placeholders(ids.size()) + ")";

    KILN_ASSIGN_OR_RETURN(
        Rows info_rows,
        tx.Query("SELECT " + std::string(kRunColumns) + " FROM runs WHERE run_uuid IN " + in, ids));
    std::unordered_map<std::string, Run> by_id;
    for (size_t i = 0; i < info_rows.size(); ++i) {
      Run run;
      run.info = ReadRunInfo(info_rows, i);
      by_id.emplace(run.info.run_id, std::move(run));
    }
    auto find = [&](const std::string& id) -> Run* {
      auto it = by_id.find(id);
      return it == by_id.end() ? nullptr : &it->second;
    };

    KILN_ASSIGN_OR_RETURN(
        Rows metric_rows,
        tx.Query("SELECT run_uuid, key, value, is_nan, timestamp, step FROM latest_metrics "
                 "WHERE run_uuid IN " +
                     in + " ORDER BY run_uuid, key",
                 ids));
    for (size_t i = 0; i < metric_rows.size(); ++i) {
      if (Run* run = find(metric_rows.Text(i, 0))) {
        run->metrics.push_back({metric_rows.Text(i, 1),
                                FromStored(metric_rows.Double(i, 2), metric_rows.Int(i, 3)),
                                metric_rows.Int(i, 4), metric_rows.Int(i, 5)});
      }
    }

    KILN_ASSIGN_OR_RETURN(Rows param_rows,
                          tx.Query("SELECT run_uuid, key, value FROM params WHERE run_uuid IN " +
                                       in + " ORDER BY run_uuid, key",
                                   ids));
    for (size_t i = 0; i < param_rows.size(); ++i) {
      if (Run* run = find(param_rows.Text(i, 0))) {
        run->params.push_back({param_rows.Text(i, 1), param_rows.Text(i, 2)});
      }
    }

    KILN_ASSIGN_OR_RETURN(Rows tag_rows,
                          tx.Query("SELECT run_uuid, key, value FROM tags WHERE run_uuid IN " + in +
                                       " ORDER BY run_uuid, key",
                                   ids));
    for (size_t i = 0; i < tag_rows.size(); ++i) {
      if (Run* run = find(tag_rows.Text(i, 0))) {
        run->tags.push_back({tag_rows.Text(i, 1), tag_rows.Text(i, 2)});
      }
    }

    KILN_ASSIGN_OR_RETURN(
        Rows input_rows,
        tx.Query("SELECT i.destination_id, i.input_uuid, d.name, d.digest, d.source_type, "
                 "d.source, d.schema, d.profile FROM inputs i JOIN datasets d ON "
                 "d.dataset_uuid = i.source_id WHERE i.source_type = 'DATASET' AND "
                 "i.destination_type = 'RUN' AND i.destination_id IN " +
                     in + " ORDER BY i.destination_id, d.name, d.digest",
                 ids));
    if (!input_rows.empty()) {
      KILN_ASSIGN_OR_RETURN(
          Rows input_tag_rows,
          tx.Query("SELECT t.input_uuid, t.name, t.value FROM input_tags t JOIN inputs i ON "
                   "i.input_uuid = t.input_uuid WHERE i.destination_type = 'RUN' AND "
                   "i.destination_id IN " +
                       in + " ORDER BY t.input_uuid, t.name",
                   ids));
      std::unordered_map<std::string, std::vector<Tag>> tags_by_input;
      for (size_t i = 0; i < input_tag_rows.size(); ++i) {
        tags_by_input[input_tag_rows.Text(i, 0)].push_back(
            {input_tag_rows.Text(i, 1), input_tag_rows.Text(i, 2)});
      }
      for (size_t i = 0; i < input_rows.size(); ++i) {
        Run* run = find(input_rows.Text(i, 0));
        if (run == nullptr) continue;
        DatasetInput input;
        input.dataset = {input_rows.Text(i, 2), input_rows.Text(i, 3), input_rows.Text(i, 4),
                         input_rows.Text(i, 5), input_rows.Text(i, 6), input_rows.Text(i, 7)};
        if (auto it = tags_by_input.find(input_rows.Text(i, 1)); it != tags_by_input.end()) {
          input.tags = std::move(it->second);
        }
        run->inputs.push_back(std::move(input));
      }
    }

    for (size_t i = begin; i < end; ++i) {
      auto it = by_id.find(run_ids[i]);
      if (it != by_id.end()) runs.push_back(std::move(it->second));
    }
  }
  return runs;
}

// Loads experiments with their tags, in the order of `experiment_ids`; unknown ids are skipped.
Result<std::vector<Experiment>> LoadExperiments(Transaction& tx,
                                                const std::vector<int64_t>& experiment_ids) {
  std::vector<Experiment> experiments;
  experiments.reserve(experiment_ids.size());
  for (size_t begin = 0; begin < experiment_ids.size(); begin += kInListChunk) {
    size_t end = std::min(experiment_ids.size(), begin + kInListChunk);
    std::vector<Value> ids(experiment_ids.begin() + static_cast<ptrdiff_t>(begin),
                           experiment_ids.begin() + static_cast<ptrdiff_t>(end));
    std::string in = "(" + Placeholders(ids.size()) + ")";
    KILN_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT " + std::string(kExperimentColumns) +
                                                  " FROM experiments WHERE experiment_id IN " + in,
                                              ids));
    std::unordered_map<int64_t, Experiment> by_id;
    for (size_t i = 0; i < rows.size(); ++i) {
      Experiment experiment;
      experiment.experiment_id = std::to_string(rows.Int(i, 0));
      experiment.name = rows.Text(i, 1);
      experiment.artifact_location = rows.Text(i, 2);
      experiment.lifecycle_stage = rows.Text(i, 3);
      experiment.creation_time = rows.Int(i, 4);
      experiment.last_update_time = rows.Int(i, 5);
      by_id.emplace(rows.Int(i, 0), std::move(experiment));
    }
    KILN_ASSIGN_OR_RETURN(Rows tag_rows,
                          tx.Query("SELECT experiment_id, key, value FROM experiment_tags WHERE "
                                   "experiment_id IN " +
                                       in + " ORDER BY experiment_id, key",
                                   ids));
    for (size_t i = 0; i < tag_rows.size(); ++i) {
      auto it = by_id.find(tag_rows.Int(i, 0));
      if (it != by_id.end()) it->second.tags.push_back({tag_rows.Text(i, 1), tag_rows.Text(i, 2)});
    }
    for (size_t i = begin; i < end; ++i) {
      auto it = by_id.find(experiment_ids[i]);
      if (it != by_id.end()) experiments.push_back(std::move(it->second));
    }
  }
  return experiments;
}

Result<Experiment> LoadExperiment(Transaction& tx, int64_t experiment_id) {
  KILN_ASSIGN_OR_RETURN(std::vector<Experiment> found, LoadExperiments(tx, {experiment_id}));
  if (found.empty()) return ExperimentNotFound(std::to_string(experiment_id));
  return std::move(found.front());
}

// --- Validation of what a write carries ----------------------------------------------------------

// Run tags: MLflow's name rule; values beyond 5000 code points are truncated (2.12 behaviour).
Result<Tag> ValidRunTag(const Tag& tag) {
  KILN_RETURN_IF_ERROR(validation::ValidateEntityName("tag", tag.key));
  return Tag{tag.key, validation::Utf8Truncate(tag.value, validation::kMaxTagValueLength)};
}

// Params: the name rule; values beyond 6000 code points are truncated.
Result<Tag> ValidParam(const Tag& param) {
  KILN_RETURN_IF_ERROR(validation::ValidateEntityName("param", param.key));
  return Tag{param.key, validation::Utf8Truncate(param.value, validation::kMaxParamValueLength)};
}

Status ValidateExperimentTag(const Tag& tag) {
  KILN_RETURN_IF_ERROR(validation::ValidateEntityName("tag", tag.key));
  return validation::ValidateLength("Tag value", tag.value,
                                    validation::kMaxExperimentTagValueLength);
}

Status ValidateBatchLimit(std::string_view entities, size_t limit, size_t count) {
  if (count <= limit) return Status::Ok();
  std::string name(entities);
  return InvalidArgument("A batch logging request can contain at most " + std::to_string(limit) +
                         " " + name + ". Got " + std::to_string(count) + " " + name +
                         ". Please split up " + name + " across multiple requests and try again.");
}

// --- Writing -----------------------------------------------------------------------------------

// Upserts run tags; `tags` maps key to value (so keys are unique and in a stable order, which
// keeps row-lock order the same across concurrent PostgreSQL writers).
// `sync_run_name` false: the caller has already written runs.name (a new run).
Status WriteTags(Transaction& tx, const std::string& run_id,
                 const std::map<std::string, std::string>& tags, bool sync_run_name = true) {
  if (tags.empty()) return Status::Ok();
  std::vector<std::vector<Value>> rows;
  rows.reserve(tags.size());
  for (const auto& [key, value] : tags) rows.push_back({run_id, key, value});
  KILN_RETURN_IF_ERROR(
      tx.ExecMany("INSERT INTO tags (run_uuid, key, value) VALUES (?, ?, ?) "
                  "ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value",
                  rows)
          .status());
  if (auto it = tags.find(std::string(kRunNameTag)); sync_run_name && it != tags.end()) {
    KILN_RETURN_IF_ERROR(
        tx.Exec("UPDATE runs SET name = ? WHERE run_uuid = ?", {it->second, run_id}).status());
  }
  return Status::Ok();
}

// Inserts params that are new; a key already logged with another value fails the whole write
// with MLflow's log-batch message. `params` maps key to (truncated) value. The insert comes first:
// when every row goes in (the usual case) no lookup is needed; otherwise the stored values are
// compared, and a conflict fails the write, so the transaction takes back what went in.
Status WriteParams(Transaction& tx, const std::string& run_id,
                   const std::map<std::string, std::string>& params) {
  if (params.empty()) return Status::Ok();
  std::vector<std::vector<Value>> rows;
  rows.reserve(params.size());
  for (const auto& [key, value] : params) rows.push_back({run_id, key, value});
  // DO NOTHING: a key logged before (or by a concurrent writer) keeps its first value.
  KILN_ASSIGN_OR_RETURN(
      int64_t inserted,
      tx.ExecMany(
          "INSERT INTO params (run_uuid, key, value) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
          rows));
  if (inserted == static_cast<int64_t>(params.size())) return Status::Ok();

  std::vector<Value> lookup = {run_id};
  for (const auto& entry : params) lookup.emplace_back(entry.first);
  KILN_ASSIGN_OR_RETURN(Rows existing,
                        tx.Query("SELECT key, value FROM params WHERE run_uuid = ? AND key IN (" +
                                     Placeholders(params.size()) + ") ORDER BY key",
                                 lookup));
  std::string non_matching;
  for (size_t i = 0; i < existing.size(); ++i) {
    std::string key = existing.Text(i, 0);
    std::string old_value = existing.Text(i, 1);
    const std::string& new_value = params.at(key);
    if (old_value != new_value) {
      if (!non_matching.empty()) non_matching += ", ";
      non_matching += "{'key': " + PythonRepr(key) + ", 'old_value': " + PythonRepr(old_value) +
                      ", 'new_value': " + PythonRepr(new_value) + "}";
    }
  }
  if (!non_matching.empty()) {
    return InvalidArgument("Changing param values is not allowed. Params were already logged='[" +
                           non_matching + "]' for run ID='" + run_id + "'.");
  }
  return Status::Ok();
}

// PostgreSQL array literal elements (text input form), appended to `out` after a comma if needed.
void AppendArrayText(std::string& out, std::string_view text) {
  out += out.size() > 1 ? ",\"" : "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
}

template <typename Number>
void AppendArrayNumber(std::string& out, Number value) {
  if (out.size() > 1) out.push_back(',');
  if constexpr (std::is_floating_point_v<Number>) {
    if (std::isinf(value)) {
      out += value > 0 ? "Infinity" : "-Infinity";
      return;
    }
  }
  char buffer[32];
  auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);  // shortest round trip
  out.append(buffer, result.ptr);
}

// One point of a history chunk: "step timestamp value\n", the value in shortest round-trip
// form, or nan / inf / -inf.
void AppendChunkPoint(std::string& out, const StoredMetric& point) {
  char buffer[32];
  out.append(buffer, std::to_chars(buffer, buffer + sizeof(buffer), point.step).ptr);
  out.push_back(' ');
  out.append(buffer, std::to_chars(buffer, buffer + sizeof(buffer), point.timestamp).ptr);
  out.push_back(' ');
  if (point.is_nan != 0) {
    out += "nan";
  } else {  // inf and -inf as such
    out.append(buffer, std::to_chars(buffer, buffer + sizeof(buffer), point.value).ptr);
  }
  out.push_back('\n');
}

// The history chunks of one batch: one per key, its points in the batch's order.
struct HistoryChunk {
  std::string_view key;
  int64_t count = 0;
  int64_t min_step = 0;
  int64_t max_step = 0;
  std::string points;
};

std::vector<HistoryChunk> ChunkPoints(const std::vector<StoredMetric>& points) {
  std::vector<HistoryChunk> chunks;  // a batch has few keys, so a linear scan beats a map
  for (const StoredMetric& point : points) {
    auto it = std::find_if(chunks.begin(), chunks.end(),
                           [&](const HistoryChunk& chunk) { return chunk.key == point.key; });
    if (it == chunks.end()) {
      chunks.push_back({point.key, 0, point.step, point.step, {}});
      it = chunks.end() - 1;
    }
    ++it->count;
    it->min_step = std::min(it->min_step, point.step);
    it->max_step = std::max(it->max_step, point.step);
    AppendChunkPoint(it->points, point);
  }
  std::sort(chunks.begin(), chunks.end(),
            [](const HistoryChunk& a, const HistoryChunk& b) { return a.key < b.key; });
  return chunks;
}

// Appends the points to the history (schema version 5): one row per key. SQLite reuses one
// prepared statement per row; PostgreSQL gets the rows as arrays in one statement of fixed text,
// planned once and run in one round trip.
Status InsertMetricHistory(Transaction& tx, const std::string& run_id,
                           const std::vector<StoredMetric>& points) {
  std::vector<HistoryChunk> chunks = ChunkPoints(points);
  if (tx.dialect().backend() == store::Backend::kSqlite) {
    std::vector<std::vector<Value>> rows;
    rows.reserve(chunks.size());
    for (HistoryChunk& chunk : chunks) {
      rows.push_back({run_id, std::string(chunk.key),
                      static_cast<int64_t>(RandomUint64() >> 1), chunk.count, chunk.min_step,
                      chunk.max_step, std::move(chunk.points)});
    }
    return tx
        .ExecMany("INSERT INTO metric_chunks (run_uuid, key, chunk_id, point_count, min_step, "
                  "max_step, points) VALUES (?, ?, ?, ?, ?, ?, ?)",
                  rows)
        .status();
  }
  std::string keys = "{", ids = "{", counts = "{", min_steps = "{", max_steps = "{", texts = "{";
  for (const HistoryChunk& chunk : chunks) {
    AppendArrayText(keys, chunk.key);
    AppendArrayNumber(ids, static_cast<int64_t>(RandomUint64() >> 1));
    AppendArrayNumber(counts, chunk.count);
    AppendArrayNumber(min_steps, chunk.min_step);
    AppendArrayNumber(max_steps, chunk.max_step);
    AppendArrayText(texts, chunk.points);
  }
  for (std::string* array : {&keys, &ids, &counts, &min_steps, &max_steps, &texts}) {
    array->push_back('}');
  }
  return tx
      .Exec("INSERT INTO metric_chunks (run_uuid, key, chunk_id, point_count, min_step, "
            "max_step, points) SELECT ?, k, i, c, lo, hi, p FROM unnest(?::text[], "
            "?::bigint[], ?::int[], ?::bigint[], ?::bigint[], ?::text[]) AS x(k, i, c, lo, hi, p)",
            {run_id, std::move(keys), std::move(ids), std::move(counts), std::move(min_steps),
             std::move(max_steps), std::move(texts)})
      .status();
}

// A history point as stored: NaN is value 0 with is_nan 1, so points order and compare as
// MLflow's table does (step, timestamp, value; identical points are one).
struct HistoryPoint {
  int64_t step;
  int64_t timestamp;
  double value;
  int64_t is_nan;

  auto Tied() const { return std::tie(step, timestamp, value, is_nan); }
};

// Parses a chunk's points text (AppendChunkPoint's lines) onto `out`.
Status ParseChunkPoints(std::string_view text, const std::string& run_id,
                        const std::string& key, std::vector<HistoryPoint>* out) {
  const char* p = text.data();
  const char* end = p + text.size();
  size_t line = 0;
  while (p != end) {
    ++line;
    HistoryPoint point{};
    auto bad = [&] {
      return Internal("metric history of run '" + run_id + "', key '" + key +
                      "': stored point " + std::to_string(line) + " is malformed");
    };
    auto step = std::from_chars(p, end, point.step);
    if (step.ec != std::errc() || step.ptr == end || *step.ptr != ' ') return bad();
    auto timestamp = std::from_chars(step.ptr + 1, end, point.timestamp);
    if (timestamp.ec != std::errc() || timestamp.ptr == end || *timestamp.ptr != ' ') {
      return bad();
    }
    const char* value_start = timestamp.ptr + 1;
    const char* value_end = std::find(value_start, end, '\n');
    if (value_end == end) return bad();
    if (std::string_view(value_start, static_cast<size_t>(value_end - value_start)) == "nan") {
      point.value = 0;
      point.is_nan = 1;
    } else {
      auto value = std::from_chars(value_start, value_end, point.value);
      if (value.ec != std::errc() || value.ptr != value_end || std::isnan(point.value)) {
        return bad();
      }
    }
    out->push_back(point);
    p = value_end + 1;
  }
  return Status::Ok();
}

// The whole history of one key, ordered by (step, timestamp, value), identical points once:
// the chunks plus any points logged before schema version 5.
Result<std::vector<HistoryPoint>> ReadHistory(Transaction& tx, const std::string& run_id,
                                              const std::string& key) {
  std::vector<HistoryPoint> points;
  KILN_ASSIGN_OR_RETURN(Rows chunks,
                        tx.Query("SELECT points FROM metric_chunks WHERE run_uuid = ? AND key = ?",
                                 {run_id, key}));
  for (size_t i = 0; i < chunks.size(); ++i) {
    KILN_RETURN_IF_ERROR(ParseChunkPoints(chunks.Text(i, 0), run_id, key, &points));
  }
  KILN_ASSIGN_OR_RETURN(
      Rows legacy, tx.Query("SELECT step, timestamp, value, is_nan FROM metrics WHERE "
                            "run_uuid = ? AND key = ?",
                            {run_id, key}));
  for (size_t i = 0; i < legacy.size(); ++i) {
    points.push_back({legacy.Int(i, 0), legacy.Int(i, 1), legacy.Double(i, 2), legacy.Int(i, 3)});
  }
  std::sort(points.begin(), points.end(),
            [](const HistoryPoint& a, const HistoryPoint& b) { return a.Tied() < b.Tied(); });
  points.erase(std::unique(points.begin(), points.end(),
                           [](const HistoryPoint& a, const HistoryPoint& b) {
                             return a.Tied() == b.Tied();
                           }),
               points.end());
  return points;
}

// ReadHistory, or NotFound naming the run when there is no such run.
Result<std::vector<HistoryPoint>> ReadRunHistory(Transaction& tx, const std::string& run_id,
                                                 const std::string& key) {
  KILN_ASSIGN_OR_RETURN(Rows run, tx.Query("SELECT 1 FROM runs WHERE run_uuid = ?", {run_id}));
  if (run.empty()) return RunNotFound(run_id);
  return ReadHistory(tx, run_id, key);
}

std::vector<Metric> ToMetrics(const std::string& key, const std::vector<HistoryPoint>& points,
                              size_t first, size_t last) {
  std::vector<Metric> metrics;
  metrics.reserve(last - first);
  for (size_t i = first; i < last; ++i) {
    const HistoryPoint& point = points[i];
    metrics.push_back({key, FromStored(point.value, point.is_nan), point.timestamp, point.step});
  }
  return metrics;
}

// Appends metric points to the history (one chunk row per key; an identical point, repeated in
// the batch or sent again by a client retry, is collapsed when the history is read) and advances
// latest_metrics: one upsert per key with the batch's winning point, whose WHERE keeps whichever
// point is later.
Status WriteMetrics(Transaction& tx, const std::string& run_id,
                    const std::vector<Metric>& metrics) {
  if (metrics.empty()) return Status::Ok();
  std::vector<StoredMetric> stored;
  stored.reserve(metrics.size());
  for (const Metric& metric : metrics) stored.push_back(ToStored(metric));

  // The winning point per key; a batch has few keys, so a linear scan beats a map.
  std::vector<const StoredMetric*> latest;
  for (const StoredMetric& point : stored) {
    auto it = std::find_if(latest.begin(), latest.end(),
                           [&](const StoredMetric* best) { return best->key == point.key; });
    if (it == latest.end()) {
      latest.push_back(&point);
    } else if (point.IsLaterThan(**it) ||
               (!(*it)->IsLaterThan(point) && point.is_nan < (*it)->is_nan)) {
      *it = &point;  // on a full tie a number beats NaN, whatever the order they came in
    }
  }
  // Keys in a stable order, so concurrent PostgreSQL writers lock latest_metrics rows alike.
  std::sort(latest.begin(), latest.end(),
            [](const StoredMetric* a, const StoredMetric* b) { return a->key < b->key; });

  KILN_RETURN_IF_ERROR(InsertMetricHistory(tx, run_id, stored));

  std::vector<std::vector<Value>> latest_rows;
  latest_rows.reserve(latest.size());
  for (const StoredMetric* point : latest) {
    latest_rows.push_back(
        {run_id, std::string(point->key), point->value, point->is_nan, point->timestamp,
         point->step});
  }
  return tx
      .ExecMany(
          "INSERT INTO latest_metrics (run_uuid, key, value, is_nan, timestamp, step) "
          "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_uuid, key) DO UPDATE SET "
          "value = excluded.value, is_nan = excluded.is_nan, timestamp = excluded.timestamp, "
          "step = excluded.step WHERE (excluded.step, excluded.timestamp, excluded.value) > "
          "(latest_metrics.step, latest_metrics.timestamp, latest_metrics.value)",
          latest_rows)
      .status();
}

// Links the points that carry a model_id to their logged models (MLflow 3.x), grouped by model.
Status LinkModelMetrics(Transaction& tx, const std::string& run_id,
                        const std::vector<Metric>& metrics) {
  std::map<std::string_view, std::vector<LoggedModelMetric>> by_model;
  for (const Metric& metric : metrics) {
    if (metric.model_id.empty()) continue;
    by_model[metric.model_id].push_back({metric.key, metric.value, metric.timestamp, metric.step,
                                         run_id, metric.dataset_name, metric.dataset_digest});
  }
  for (const auto& [model_id, points] : by_model) {
    KILN_RETURN_IF_ERROR(WriteLoggedModelMetrics(tx, std::string(model_id), points));
  }
  return Status::Ok();
}

}  // namespace

// --- Open ---------------------------------------------------------------------------------------

// Enough for the children of about 100,000 runs of 5 params, 5 metrics and 3 tags.
constexpr size_t kRunCacheBytes = size_t{64} << 20;

TrackingStore::TrackingStore(store::Database* database, Clock* clock)
    : database_(database),
      clock_(clock),
      run_cache_(std::make_unique<RunChildrenCache>(kRunCacheBytes)) {}

Result<std::unique_ptr<TrackingStore>> TrackingStore::Open(store::Database* database,
                                                           Clock* clock) {
  assert(database != nullptr && clock != nullptr);
  std::unique_ptr<TrackingStore> tracking(new TrackingStore(database, clock));
  // Read first so that opening an existing store never waits for the writer.
  bool exists = false;
  KILN_RETURN_IF_ERROR(database->Read([&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT 1 FROM experiments WHERE experiment_id = ?",
                                              {kDefaultExperimentId}));
    exists = !rows.empty();
    return Status::Ok();
  }));
  if (!exists) {
    const int64_t now = clock->NowMillis();
    // Several processes may open a new store at once: the first insert wins, the rest do nothing.
    KILN_RETURN_IF_ERROR(WriteTracking(database, [&](Transaction& tx) -> Status {
      return tx
          .Exec(
              "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, "
              "creation_time, last_update_time) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
              {kDefaultExperimentId, std::string("Default"),
               DefaultArtifactLocation(kDefaultExperimentId), std::string(kActive), now, now})
          .status();
    }));
  }
  return tracking;
}

// --- Experiments
// ----------------------------------------------------------------------------------

Result<std::string> TrackingStore::CreateExperiment(const std::string& name,
                                                    const std::string& artifact_location,
                                                    const std::vector<Tag>& tags) {
  KILN_RETURN_IF_ERROR(validation::ValidateExperimentName(name));
  if (artifact_location.starts_with("runs:")) {
    return InvalidArgument("Artifact location cannot be a runs:/ URI. Given: '" +
                           artifact_location + "'");
  }
  std::map<std::string, std::string> tag_map;
  for (const Tag& tag : tags) {
    KILN_RETURN_IF_ERROR(ValidateExperimentTag(tag));
    tag_map[tag.key] = tag.value;
  }
  const int64_t now = clock_->NowMillis();
  int64_t created_id = 0;
  KILN_RETURN_IF_ERROR(WriteTracking(database_, [&](Transaction& tx) -> Status {
    // The sequence is shared by every process; skip values that are taken (the Default
    // experiment 0, or experiments imported with explicit ids).
    int64_t id = 0;
    while (true) {
      KILN_ASSIGN_OR_RETURN(id, tx.NextSequenceValue("experiment_id"));
      if (id <= 0) continue;
      KILN_ASSIGN_OR_RETURN(Rows taken,
                            tx.Query("SELECT 1 FROM experiments WHERE experiment_id = ?", {id}));
      if (taken.empty()) break;
    }
    std::string location =
        artifact_location.empty() ? DefaultArtifactLocation(id) : artifact_location;
    // DO NOTHING rather than a failed statement, so a taken name (also by a deleted experiment,
    // or by a concurrent creator) is a clean AlreadyExists on both backends.
    KILN_ASSIGN_OR_RETURN(
        int64_t inserted,
        tx.Exec("INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, "
                "creation_time, last_update_time) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                {id, name, location, std::string(kActive), now, now}));
    if (inserted == 0) return AlreadyExists("Experiment(name=" + name + ") already exists.");
    std::vector<std::vector<Value>> tag_rows;
    for (const auto& [key, value] : tag_map) tag_rows.push_back({id, key, value});
    if (!tag_rows.empty()) {
      KILN_RETURN_IF_ERROR(
          tx.ExecMany("INSERT INTO experiment_tags (experiment_id, key, value) VALUES (?, ?, ?)",
                      tag_rows)
              .status());
    }
    created_id = id;
    return Status::Ok();
  }));
  return std::to_string(created_id);
}

Result<Experiment> TrackingStore::GetExperiment(const std::string& experiment_id) {
  KILN_ASSIGN_OR_RETURN(int64_t id, ParseExperimentId(experiment_id));
  std::optional<Experiment> found;
  KILN_RETURN_IF_ERROR(database_->Read([&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(Experiment experiment, LoadExperiment(tx, id));
    found = std::move(experiment);
    return Status::Ok();
  }));
  return std::move(*found);
}

Result<Experiment> TrackingStore::GetExperimentByName(const std::string& name) {
  std::optional<Experiment> found;
  KILN_RETURN_IF_ERROR(database_->Read([&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(Rows rows,
                          tx.Query("SELECT experiment_id FROM experiments WHERE name = ?", {name}));
    if (rows.empty()) return NotFound("Could not find experiment with name '" + name + "'");
    KILN_ASSIGN_OR_RETURN(Experiment experiment, LoadExperiment(tx, rows.Int(0, 0)));
    found = std::move(experiment);
    return Status::Ok();
  }));
  return std::move(*found);
}

Result<Page<Experiment>> TrackingStore::SearchExperiments(const ExperimentSearchSpec& spec) {
  KILN_ASSIGN_OR_RETURN(SqlStatement statement,
                        BuildExperimentSearchSql(spec, database_->dialect()));
  Page<Experiment> page;
  KILN_RETURN_IF_ERROR(database_->Read([&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(Rows rows, tx.Query(statement.sql, statement.params));
    std::vector<int64_t> ids;
    for (size_t i = 0; i < rows.size() && static_cast<int64_t>(i) < spec.max_results; ++i) {
      ids.push_back(rows.Int(i, 0));
    }
    page.next_page_token = static_cast<int64_t>(rows.size()) > spec.max_results
                               ? EncodePageToken(spec.offset + spec.max_results)
                               : "";
    KILN_ASSIGN_OR_RETURN(page.items, LoadExperiments(tx, ids));
    return Status::Ok();
  }));
  return page;
}

Status TrackingStore::RenameExperiment(const std::string& experiment_id,
                                       const std::string& new_name) {
  KILN_RETURN_IF_ERROR(validation::ValidateExperimentName(new_name));
  KILN_ASSIGN_OR_RETURN(int64_t id, ParseExperimentId(experiment_id));
  const int64_t now = clock_->NowMillis();
  return WriteTracking(database_, [&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(Experiment experiment, LoadExperiment(tx, id));
    if (experiment.lifecycle_stage != kActive) {
      return InvalidArgument("Cannot rename a non-active experiment.");
    }
    if (experiment.name == new_name) return Status::Ok();
    KILN_ASSIGN_OR_RETURN(Rows taken,
                          tx.Query("SELECT 1 FROM experiments WHERE name = ?", {new_name}));
    if (!taken.empty()) return AlreadyExists("Experiment(name=" + new_name + ") already exists.");
    return tx
        .Exec("UPDATE experiments SET name = ?, last_update_time = ? WHERE experiment_id = ?",
              {new_name, now, id})
        .status();
  });
}

Status TrackingStore::DeleteExperiment(const std::string& experiment_id) {
  KILN_ASSIGN_OR_RETURN(int64_t id, ParseExperimentId(experiment_id));
  const int64_t now = clock_->NowMillis();
  return WriteTracking(database_, [&](Transaction& tx) -> Status {
    // As MLflow: only an active experiment can be deleted, and its runs are deleted with it.
    KILN_ASSIGN_OR_RETURN(
        int64_t changed, tx.Exec("UPDATE experiments SET lifecycle_stage = ?, last_update_time = ? "
                                 "WHERE experiment_id = ? AND lifecycle_stage = ?",
                                 {std::string(kDeleted), now, id, std::string(kActive)}));
    if (changed == 0) return ExperimentNotFound(experiment_id);
    return tx
        .Exec(
            "UPDATE runs SET lifecycle_stage = ?, deleted_time = ? "
            "WHERE experiment_id = ? AND lifecycle_stage = ?",
            {std::string(kDeleted), now, id, std::string(kActive)})
        .status();
  });
}

Status TrackingStore::RestoreExperiment(const std::string& experiment_id) {
  KILN_ASSIGN_OR_RETURN(int64_t id, ParseExperimentId(experiment_id));
  const int64_t now = clock_->NowMillis();
  return WriteTracking(database_, [&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(
        int64_t changed, tx.Exec("UPDATE experiments SET lifecycle_stage = ?, last_update_time = ? "
                                 "WHERE experiment_id = ? AND lifecycle_stage = ?",
                                 {std::string(kActive), now, id, std::string(kDeleted)}));
    if (changed == 0) return ExperimentNotFound(experiment_id);
    // MLflow restores every run of the experiment.
    return tx
        .Exec("UPDATE runs SET lifecycle_stage = ?, deleted_time = NULL WHERE experiment_id = ?",
              {std::string(kActive), id})
        .status();
  });
}

Status TrackingStore::SetExperimentTag(const std::string& experiment_id, const Tag& tag) {
  KILN_RETURN_IF_ERROR(ValidateExperimentTag(tag));
  KILN_ASSIGN_OR_RETURN(int64_t id, ParseExperimentId(experiment_id));
  return WriteTracking(database_, [&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(Experiment experiment, LoadExperiment(tx, id));
    KILN_RETURN_IF_ERROR(CheckExperimentActive(experiment));
    return tx
        .Exec(
            "INSERT INTO experiment_tags (experiment_id, key, value) VALUES (?, ?, ?) "
            "ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value",
            {id, tag.key, tag.value})
        .status();
  });
}

Status TrackingStore::DeleteExperimentTag(const std::string& experiment_id,
                                          const std::string& key) {
  KILN_ASSIGN_OR_RETURN(int64_t id, ParseExperimentId(experiment_id));
  return WriteTracking(database_, [&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(Experiment experiment, LoadExperiment(tx, id));
    KILN_RETURN_IF_ERROR(CheckExperimentActive(experiment));
    KILN_ASSIGN_OR_RETURN(
        int64_t deleted,
        tx.Exec("DELETE FROM experiment_tags WHERE experiment_id = ? AND key = ?", {id, key}));
    if (deleted == 0) {
      return NotFound("No tag with name: " + key + " in experiment with id " + experiment_id);
    }
    return Status::Ok();
  });
}

// --- Runs
// -----------------------------------------------------------------------------------------

Result<Run> TrackingStore::CreateRun(const CreateRunRequest& request) {
  const std::string experiment_text =
      request.experiment_id.empty() ? std::to_string(kDefaultExperimentId) : request.experiment_id;
  KILN_ASSIGN_OR_RETURN(int64_t experiment_id, ParseExperimentId(experiment_text));
  std::map<std::string, std::string> tags;
  for (const Tag& tag : request.tags) {
    KILN_ASSIGN_OR_RETURN(Tag valid, ValidRunTag(tag));
    tags[valid.key] = std::move(valid.value);
  }
  std::string run_name = request.run_name;
  if (auto it = tags.find(std::string(kRunNameTag)); it != tags.end()) {
    if (!run_name.empty() && run_name != it->second) {
      return InvalidArgument(
          "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different "
          "values (run_name='" +
          run_name + "', mlflow.runName='" + it->second + "').");
    }
    run_name = it->second;
  }
  if (run_name.empty()) run_name = validation::GenerateRunName();
  tags[std::string(kRunNameTag)] = run_name;

  Run run;
  run.info.run_id = NewId();
  run.info.run_name = run_name;
  run.info.experiment_id = std::to_string(experiment_id);
  run.info.user_id = request.user_id;
  run.info.status = "RUNNING";
  run.info.start_time = request.start_time.value_or(clock_->NowMillis());
  run.info.lifecycle_stage = std::string(kActive);
  for (const auto& [key, value] : tags) run.tags.push_back({key, value});

  KILN_RETURN_IF_ERROR(WriteTracking(database_, [&](Transaction& tx) -> Status {
    // Only what the run needs of its experiment (not its tags).
    KILN_ASSIGN_OR_RETURN(Rows experiment,
                          tx.Query("SELECT artifact_location, lifecycle_stage FROM experiments "
                                   "WHERE experiment_id = ?",
                                   {experiment_id}));
    if (experiment.empty()) return ExperimentNotFound(std::to_string(experiment_id));
    Experiment parent;
    parent.experiment_id = std::to_string(experiment_id);
    parent.lifecycle_stage = experiment.Text(0, 1);
    KILN_RETURN_IF_ERROR(CheckExperimentActive(parent));
    run.info.artifact_uri = AppendUriPath(experiment.Text(0, 0), run.info.run_id + "/artifacts");
    KILN_RETURN_IF_ERROR(
        tx.Exec(
              "INSERT INTO runs (run_uuid, name, experiment_id, user_id, status, start_time, "
              "end_time, lifecycle_stage, artifact_uri, deleted_time) "
              "VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, NULL)",
              {run.info.run_id, run.info.run_name, experiment_id, run.info.user_id, run.info.status,
               run.info.start_time, run.info.lifecycle_stage, run.info.artifact_uri})
            .status());
    return WriteTags(tx, run.info.run_id, tags, /*sync_run_name=*/false);
  }));
  return run;
}

Result<Run> TrackingStore::GetRun(const std::string& run_id) {
  std::optional<Run> found;
  KILN_RETURN_IF_ERROR(database_->Read([&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(std::vector<Run> runs, LoadRuns(tx, {run_id}));
    if (runs.empty()) return RunNotFound(run_id);
    found = std::move(runs.front());
    return Status::Ok();
  }));
  return std::move(*found);
}

Result<RunInfo> TrackingStore::UpdateRun(const UpdateRunRequest& request) {
  if (request.status) KILN_RETURN_IF_ERROR(validation::ValidateRunStatus(*request.status));
  // As MLflow: an empty run_name leaves the name alone.
  const bool rename = request.run_name.has_value() && !request.run_name->empty();
  RunInfo updated;
  KILN_RETURN_IF_ERROR(WriteTracking(database_, [&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(updated, LoadRunInfo(tx, request.run_id));
    KILN_RETURN_IF_ERROR(CheckRunActive(updated));
    if (request.status) updated.status = *request.status;
    if (request.end_time) updated.end_time = *request.end_time;
    if (rename) updated.run_name = *request.run_name;
    // A rename also rewrites the mlflow.runName tag: a change of the run's children.
    KILN_RETURN_IF_ERROR(
        tx.Exec("UPDATE runs SET status = ?, end_time = ?, name = ?, revision = revision + ? "
                "WHERE run_uuid = ?",
                {updated.status, updated.end_time ? Value(*updated.end_time) : store::Null(),
                 updated.run_name, int64_t{rename ? 1 : 0}, updated.run_id})
            .status());
    if (!rename) return Status::Ok();
    return WriteTags(tx, updated.run_id, {{std::string(kRunNameTag), updated.run_name}});
  }));
  return updated;
}

Status TrackingStore::DeleteRun(const std::string& run_id) {
  const int64_t now = clock_->NowMillis();
  return WriteTracking(database_, [&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(
        int64_t changed,
        tx.Exec("UPDATE runs SET lifecycle_stage = ?, deleted_time = ? WHERE run_uuid = ?",
                {std::string(kDeleted), now, run_id}));
    return changed == 0 ? RunNotFound(run_id) : Status::Ok();
  });
}

Status TrackingStore::RestoreRun(const std::string& run_id) {
  return WriteTracking(database_, [&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(
        int64_t changed,
        tx.Exec("UPDATE runs SET lifecycle_stage = ?, deleted_time = NULL WHERE run_uuid = ?",
                {std::string(kActive), run_id}));
    return changed == 0 ? RunNotFound(run_id) : Status::Ok();
  });
}

Status TrackingStore::LogMetric(const std::string& run_id, const Metric& metric) {
  KILN_RETURN_IF_ERROR(validation::ValidateEntityName("metric", metric.key));
  return WriteTracking(database_, [&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(RunInfo info, LoadRunInfoForWrite(tx, run_id));
    KILN_RETURN_IF_ERROR(CheckRunActive(info));
    KILN_RETURN_IF_ERROR(WriteMetrics(tx, run_id, {metric}));
    if (metric.model_id.empty()) return Status::Ok();
    return LinkModelMetrics(tx, run_id, {metric});
  });
}

Status TrackingStore::LogParam(const std::string& run_id, const Tag& param) {
  KILN_ASSIGN_OR_RETURN(Tag valid, ValidParam(param));
  return WriteTracking(database_, [&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(RunInfo info, LoadRunInfoForWrite(tx, run_id));
    KILN_RETURN_IF_ERROR(CheckRunActive(info));
    KILN_ASSIGN_OR_RETURN(
        int64_t inserted,
        tx.Exec("INSERT INTO params (run_uuid, key, value) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                {run_id, valid.key, valid.value}));
    if (inserted == 1) return Status::Ok();
    KILN_ASSIGN_OR_RETURN(
        Rows existing,
        tx.Query("SELECT value FROM params WHERE run_uuid = ? AND key = ?", {run_id, valid.key}));
    std::string old_value = existing.empty() ? "" : existing.Text(0, 0);
    if (old_value == valid.value) return Status::Ok();
    return InvalidArgument("Changing param values is not allowed. Param with key='" + valid.key +
                           "' was already logged with value='" + old_value + "' for run ID='" +
                           run_id + "'. Attempted logging new value '" + valid.value + "'.");
  });
}

Status TrackingStore::SetTag(const std::string& run_id, const Tag& tag) {
  KILN_ASSIGN_OR_RETURN(Tag valid, ValidRunTag(tag));
  return WriteTracking(database_, [&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(RunInfo info, LoadRunInfoForWrite(tx, run_id));
    KILN_RETURN_IF_ERROR(CheckRunActive(info));
    return WriteTags(tx, run_id, {{valid.key, valid.value}});
  });
}

Status TrackingStore::DeleteTag(const std::string& run_id, const std::string& key) {
  return WriteTracking(database_, [&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(RunInfo info, LoadRunInfoForWrite(tx, run_id));
    KILN_RETURN_IF_ERROR(CheckRunActive(info));
    KILN_ASSIGN_OR_RETURN(
        int64_t deleted, tx.Exec("DELETE FROM tags WHERE run_uuid = ? AND key = ?", {run_id, key}));
    if (deleted == 0) return NotFound("No tag with name: " + key + " in run with id " + run_id);
    return Status::Ok();
  });
}

Status TrackingStore::LogBatch(const LogBatchRequest& request) {
  // Everything is checked before the transaction, in MLflow's order, so a bad batch writes nothing.
  KILN_RETURN_IF_ERROR(CheckRunIdShape(request.run_id));
  KILN_RETURN_IF_ERROR(
      ValidateBatchLimit("metrics", validation::kMaxMetricsPerBatch, request.metrics.size()));
  KILN_RETURN_IF_ERROR(
      ValidateBatchLimit("params", validation::kMaxParamsPerBatch, request.params.size()));
  KILN_RETURN_IF_ERROR(
      ValidateBatchLimit("tags", validation::kMaxTagsPerBatch, request.tags.size()));
  KILN_RETURN_IF_ERROR(
      ValidateBatchLimit("metrics, params, and tags", validation::kMaxEntitiesPerBatch,
                         request.metrics.size() + request.params.size() + request.tags.size()));
  for (const Metric& metric : request.metrics) {
    KILN_RETURN_IF_ERROR(validation::ValidateEntityName("metric", metric.key));
  }
  std::map<std::string, std::string> params;
  std::vector<std::string> duplicate_keys;
  for (const Tag& param : request.params) {
    KILN_ASSIGN_OR_RETURN(Tag valid, ValidParam(param));
    auto [it, inserted] = params.emplace(valid.key, valid.value);
    if (!inserted && it->second != valid.value) duplicate_keys.push_back(valid.key);
  }
  if (!duplicate_keys.empty()) {
    std::string listed;
    for (const std::string& key : duplicate_keys) {
      listed += (listed.empty() ? "" : ", ") + PythonRepr(key);
    }
    return InvalidArgument("Duplicate parameter keys have been submitted: [" + listed +
                           "]. Please ensure the request contains only one param value per param "
                           "key.");
  }
  std::map<std::string, std::string> tags;
  for (const Tag& tag : request.tags) {
    KILN_ASSIGN_OR_RETURN(Tag valid, ValidRunTag(tag));
    tags[valid.key] = std::move(valid.value);  // the last value of a key wins, as in MLflow
  }
  return WriteTracking(database_, [&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(RunInfo info, LoadRunInfoForWrite(tx, request.run_id));
    KILN_RETURN_IF_ERROR(CheckRunActive(info));
    KILN_RETURN_IF_ERROR(WriteParams(tx, request.run_id, params));
    KILN_RETURN_IF_ERROR(WriteMetrics(tx, request.run_id, request.metrics));
    KILN_RETURN_IF_ERROR(LinkModelMetrics(tx, request.run_id, request.metrics));
    return WriteTags(tx, request.run_id, tags);
  });
}

Status TrackingStore::LogInputs(const std::string& run_id,
                                const std::vector<DatasetInput>& inputs) {
  KILN_RETURN_IF_ERROR(CheckRunIdShape(run_id));
  // One input per (name, digest); the first of duplicates wins, as in MLflow.
  struct PendingInput {
    const DatasetInput* input;
    std::string dataset_uuid;  // used if the dataset is new to the experiment
    std::string input_uuid;    // used if the run does not have this input yet
  };
  std::vector<PendingInput> pending;
  std::set<std::pair<std::string, std::string>> seen;
  for (const DatasetInput& input : inputs) {
    const Dataset& dataset = input.dataset;
    if (dataset.name.empty()) return InvalidArgument("Dataset name cannot be empty");
    if (dataset.digest.empty()) return InvalidArgument("Dataset digest cannot be empty");
    auto too_long = [](std::string_view what, const std::string& value, size_t limit) -> Status {
      if (validation::Utf8Length(value) <= limit) return Status::Ok();
      return InvalidArgument(std::string(what) + " exceeds the maximum length of " +
                             std::to_string(limit));
    };
    KILN_RETURN_IF_ERROR(too_long("Dataset name", dataset.name, validation::kMaxDatasetNameLength));
    KILN_RETURN_IF_ERROR(
        too_long("Dataset digest", dataset.digest, validation::kMaxDatasetDigestLength));
    KILN_RETURN_IF_ERROR(
        too_long("Dataset source", dataset.source, validation::kMaxDatasetSourceLength));
    KILN_RETURN_IF_ERROR(
        too_long("Dataset schema", dataset.schema, validation::kMaxDatasetSchemaLength));
    KILN_RETURN_IF_ERROR(
        too_long("Dataset profile", dataset.profile, validation::kMaxDatasetProfileLength));
    for (const Tag& tag : input.tags) {
      if (tag.key.empty()) return InvalidArgument("InputTag key cannot be empty");
      KILN_RETURN_IF_ERROR(too_long("InputTag key", tag.key, validation::kMaxInputTagKeyLength));
      KILN_RETURN_IF_ERROR(
          too_long("InputTag value", tag.value, validation::kMaxInputTagValueLength));
    }
    if (seen.emplace(dataset.name, dataset.digest).second) {
      pending.push_back({&input, NewId(), NewId()});
    }
  }
  if (pending.empty()) return Status::Ok();

  return WriteTracking(database_, [&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(RunInfo info, LoadRunInfoForWrite(tx, run_id));
    KILN_RETURN_IF_ERROR(CheckRunActive(info));
    const int64_t experiment_id = std::stoll(info.experiment_id);

    // Datasets belong to the experiment; an existing (name, digest) is reused as is.
    std::vector<std::vector<Value>> dataset_rows;
    std::vector<Value> names = {experiment_id};
    for (const PendingInput& p : pending) {
      const Dataset& d = p.input->dataset;
      dataset_rows.push_back({p.dataset_uuid, experiment_id, d.name, d.digest, d.source_type,
                              d.source, d.schema, d.profile});
      names.emplace_back(d.name);
    }
    KILN_RETURN_IF_ERROR(
        tx.ExecMany("INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, source_type, "
                    "source, schema, profile) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT DO NOTHING",
                    dataset_rows)
            .status());
    KILN_ASSIGN_OR_RETURN(Rows dataset_ids,
                          tx.Query("SELECT name, digest, dataset_uuid FROM datasets WHERE "
                                   "experiment_id = ? AND name IN (" +
                                       Placeholders(pending.size()) + ")",
                                   names));
    std::map<std::pair<std::string, std::string>, std::string> uuid_by_dataset;
    for (size_t i = 0; i < dataset_ids.size(); ++i) {
      uuid_by_dataset[{dataset_ids.Text(i, 0), dataset_ids.Text(i, 1)}] = dataset_ids.Text(i, 2);
    }

    for (const PendingInput& p : pending) {
      auto it = uuid_by_dataset.find({p.input->dataset.name, p.input->dataset.digest});
      if (it == uuid_by_dataset.end()) {
        return Internal("dataset '" + p.input->dataset.name + "' vanished while logging inputs");
      }
      // An input the run already has keeps its tags, as in MLflow.
      KILN_ASSIGN_OR_RETURN(
          int64_t inserted,
          tx.Exec("INSERT INTO inputs (input_uuid, source_type, source_id, destination_type, "
                  "destination_id) VALUES (?, 'DATASET', ?, 'RUN', ?) ON CONFLICT DO NOTHING",
                  {p.input_uuid, it->second, run_id}));
      if (inserted == 0 || p.input->tags.empty()) continue;
      std::map<std::string, std::string> tags;
      for (const Tag& tag : p.input->tags) tags[tag.key] = tag.value;
      std::vector<std::vector<Value>> tag_rows;
      for (const auto& [key, value] : tags) tag_rows.push_back({p.input_uuid, key, value});
      KILN_RETURN_IF_ERROR(
          tx.ExecMany("INSERT INTO input_tags (input_uuid, name, value) VALUES (?, ?, ?)", tag_rows)
              .status());
    }
    return Status::Ok();
  });
}

Status TrackingStore::LogModel(const std::string& run_id, const std::string& model_json) {
  Result<Json> parsed = ParseJson(model_json);
  if (!parsed.ok() || !parsed->is_object()) {
    return InvalidArgument("Malformed model info. \n " + model_json + " \n is not a valid JSON.");
  }
  std::string missing;
  for (const char* field : {"artifact_path", "flavors", "run_id", "utc_time_created"}) {
    if (!parsed->contains(field)) {
      missing += (missing.empty() ? "'" : ", '") + std::string(field) + "'";
    }
  }
  if (!missing.empty()) {
    return InvalidArgument("Model json is missing mandatory fields: {" + missing + "}");
  }
  const Json model = std::move(parsed).value();
  return WriteTracking(database_, [&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(RunInfo info, LoadRunInfoForWrite(tx, run_id));
    KILN_RETURN_IF_ERROR(CheckRunActive(info));
    KILN_ASSIGN_OR_RETURN(Rows rows,
                          tx.Query("SELECT value FROM tags WHERE run_uuid = ? AND key = ?",
                                   {run_id, std::string(kLoggedModelsTag)}));
    Json history = Json::array();
    if (!rows.empty()) {
      // A history that is not a JSON array (edited by hand) is replaced rather than failing.
      Result<Json> previous = ParseJson(rows.Text(0, 0));
      if (previous.ok() && previous->is_array()) history = std::move(previous).value();
    }
    history.push_back(model);
    // Not truncated like other tags: a cut JSON document would be useless to every reader.
    return WriteTags(tx, run_id,
                     {{std::string(kLoggedModelsTag),
                       history.dump(-1, ' ', false, Json::error_handler_t::replace)}});
  });
}

Result<Page<Metric>> TrackingStore::GetMetricHistory(const std::string& run_id,
                                                     const std::string& metric_key,
                                                     int64_t max_results,
                                                     const std::string& page_token) {
  const int64_t limit = max_results > 0 ? max_results : kDefaultMetricHistoryPage;
  int64_t offset = 0;
  if (!page_token.empty()) {
    KILN_ASSIGN_OR_RETURN(offset, DecodePageToken(page_token));
  }
  Page<Metric> page;
  KILN_RETURN_IF_ERROR(database_->Read([&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(std::vector<HistoryPoint> points, ReadRunHistory(tx, run_id, metric_key));
    const size_t first = static_cast<size_t>(std::min<uint64_t>(offset, points.size()));
    const size_t last = first + std::min<size_t>(static_cast<size_t>(limit), points.size() - first);
    page.items = ToMetrics(metric_key, points, first, last);
    if (last < points.size()) page.next_page_token = EncodePageToken(static_cast<int64_t>(last));
    return Status::Ok();
  }));
  return page;
}

Result<std::vector<Metric>> TrackingStore::GetFullMetricHistory(const std::string& run_id,
                                                                const std::string& metric_key) {
  std::vector<Metric> metrics;
  KILN_RETURN_IF_ERROR(database_->Read([&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(std::vector<HistoryPoint> points, ReadRunHistory(tx, run_id, metric_key));
    metrics = ToMetrics(metric_key, points, 0, points.size());
    return Status::Ok();
  }));
  return metrics;
}

Result<Page<Run>> TrackingStore::SearchRuns(const RunSearchSpec& spec) {
  Page<Run> page;
  KILN_RETURN_IF_ERROR(database_->Read([&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(page, SearchRunPage(tx, spec, run_cache_.get()));
    return Status::Ok();
  }));
  return page;
}

}  // namespace kiln::tracking
