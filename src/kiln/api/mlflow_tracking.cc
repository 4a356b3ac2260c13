// MLflow's tracking RPCs (service.proto) over TrackingStore.
//
// Requests are decoded into a JSON object (api/request.h) and read with typed accessors whose
// errors name the field ("metrics[3].value"). Replies are written straight into a string rather
// than through a JSON tree: search-runs answers with up to 50,000 runs, and building nlohmann
// objects for them costs several times the database work.
//
// Reply shape (MLflow 2.12's message_to_json): snake_case names in proto field order, int64 as
// numbers, enums by name, a NaN or infinite double as the strings "NaN", "Infinity",
// "-Infinity", unset optional fields and empty repeated fields omitted, an empty message as {}.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <exception>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <simdjson.h>

#include "kiln/api/errors.h"
#include "kiln/api/mlflow_routes.h"
#include "kiln/api/request.h"
#include "kiln/core/json.h"
#include "kiln/http/router.h"
#include "kiln/tracking/search.h"
#include "kiln/tracking/tracking_store.h"

namespace kiln::api {
namespace {

using tracking::DatasetInput;
using tracking::Experiment;
using tracking::Metric;
using tracking::Run;
using tracking::RunInfo;
using tracking::Tag;
using tracking::TrackingStore;

constexpr int64_t kSearchMaxResultsDefault = 1000;
constexpr int64_t kSearchMaxResultsThreshold = 50000;
// MLflow's MAX_BATCH_LOG_REQUEST_SIZE.
constexpr size_t kMaxBatchRequestBytes = 1000000;
// MLflow's MAX_RESULTS_GET_METRIC_HISTORY.
constexpr int64_t kMetricHistoryMaxResults = 25000;
// MLflow's MAX_RUNS_GET_METRIC_HISTORY_BULK and MAX_RESULTS_PER_RUN.
constexpr size_t kBulkMaxRuns = 100;
constexpr int64_t kBulkMaxResultsPerRun = 2500;

constexpr std::string_view kApiDocsHint =
    " See the API docs for more information about request parameters.";

// ---------------------------------------------------------------------------------------------
// Reply writing.

// Length of the valid UTF-8 sequence starting at text[i], or 0 if it is not valid (overlong
// forms, surrogates and truncated sequences included).
size_t Utf8SequenceLength(std::string_view text, size_t i) {
  auto byte = [&](size_t k) -> unsigned {
    return i + k < text.size() ? static_cast<unsigned char>(text[i + k]) : 0x100u;
  };
  auto cont = [&](size_t k, unsigned lo = 0x80, unsigned hi = 0xBF) {
    unsigned b = byte(k);
    return b >= lo && b <= hi;
  };
  unsigned lead = byte(0);
  if (lead >= 0xC2 && lead <= 0xDF) return cont(1) ? 2 : 0;
  if (lead == 0xE0) return cont(1, 0xA0) && cont(2) ? 3 : 0;
  if ((lead >= 0xE1 && lead <= 0xEC) || lead == 0xEE || lead == 0xEF) {
    return cont(1) && cont(2) ? 3 : 0;
  }
  if (lead == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
  if (lead == 0xF0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (lead >= 0xF1 && lead <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (lead == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

// Appends `text` as a JSON string. Invalid UTF-8 (a value truncated mid-character by an older
// writer, bytes from another tool) becomes U+FFFD so that the reply is always valid JSON.
void AppendJsonString(std::string& out, std::string_view text) {
  out.push_back('"');
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    size_t start = i;
    while (i < n) {
      unsigned char c = static_cast<unsigned char>(text[i]);
      if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') break;
      ++i;
    }
    out.append(text.data() + start, i - start);
    if (i >= n) break;
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '"') {
      out += "\\\"";
      ++i;
    } else if (c == '\\') {
      out += "\\\\";
      ++i;
    } else if (c < 0x20) {
      switch (c) {
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default: {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xF]);
        }
      }
      ++i;
    } else {
      size_t length = Utf8SequenceLength(text, i);
      if (length == 0) {
        out += "\xEF\xBF\xBD";
        ++i;
      } else {
        out.append(text.data() + i, length);
        i += length;
      }
    }
  }
  out.push_back('"');
}

void AppendInt(std::string& out, int64_t value) {
  char buffer[24];
  auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  out.append(buffer, result.ptr);
}

// Python's repr of a float: shortest round-trip digits, "1.0" rather than "1"; NaN and the
// infinities as MLflow's strings.
void AppendDouble(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "\"NaN\"";
    return;
  }
  if (std::isinf(value)) {
    out += value > 0 ? "\"Infinity\"" : "\"-Infinity\"";
    return;
  }
  char buffer[32];
  auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  std::string_view digits(buffer, static_cast<size_t>(result.ptr - buffer));
  out += digits;
  if (digits.find_first_of(".e") == std::string_view::npos) out += ".0";
}

// Writes one JSON object field by field; keys are literals of this file and need no escaping.
class ObjectWriter {
 public:
  explicit ObjectWriter(std::string& out) : out_(out) { out_.push_back('{'); }
  ObjectWriter(const ObjectWriter&) = delete;
  ObjectWriter& operator=(const ObjectWriter&) = delete;

  void String(std::string_view key, std::string_view value) {
    Key(key);
    AppendJsonString(out_, value);
  }
  void StringIfNotEmpty(std::string_view key, std::string_view value) {
    if (!value.empty()) String(key, value);
  }
  void Int(std::string_view key, int64_t value) {
    Key(key);
    AppendInt(out_, value);
  }
  void Double(std::string_view key, double value) {
    Key(key);
    AppendDouble(out_, value);
  }
  // Writes the key of a nested value; the caller appends the value to the returned string.
  std::string& Nested(std::string_view key) {
    Key(key);
    return out_;
  }
  void Close() { out_.push_back('}'); }

 private:
  void Key(std::string_view key) {
    if (!first_) out_.push_back(',');
    first_ = false;
    out_.push_back('"');
    out_ += key;
    out_ += "\":";
  }

  std::string& out_;
  bool first_ = true;
};

// Appends `[item, item, ...]` using `append_item(out, item)`.
template <typename T, typename F>
void AppendArray(std::string& out, const std::vector<T>& items, F append_item) {
  out.push_back('[');
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out.push_back(',');
    append_item(out, items[i]);
  }
  out.push_back(']');
}

void AppendKeyValue(std::string& out, const Tag& tag) {
  ObjectWriter object(out);
  object.String("key", tag.key);
  object.String("value", tag.value);
  object.Close();
}

// A repeated field: omitted when empty, as protobuf does.
void KeyValuesField(ObjectWriter& object, std::string_view key, const std::vector<Tag>& tags) {
  if (tags.empty()) return;
  AppendArray(object.Nested(key), tags, AppendKeyValue);
}

void AppendExperiment(std::string& out, const Experiment& experiment) {
  ObjectWriter object(out);
  object.String("experiment_id", experiment.experiment_id);
  object.String("name", experiment.name);
  object.StringIfNotEmpty("artifact_location", experiment.artifact_location);
  object.String("lifecycle_stage", experiment.lifecycle_stage);
  object.Int("last_update_time", experiment.last_update_time);
  object.Int("creation_time", experiment.creation_time);
  KeyValuesField(object, "tags", experiment.tags);
  object.Close();
}

// RunInfo in proto field order; run_uuid (deprecated) is sent beside run_id as MLflow does.
void AppendRunInfo(std::string& out, const RunInfo& info) {
  ObjectWriter object(out);
  object.String("run_uuid", info.run_id);
  object.String("experiment_id", info.experiment_id);
  object.String("run_name", info.run_name);
  object.String("user_id", info.user_id);
  object.String("status", info.status);
  object.Int("start_time", info.start_time);
  if (info.end_time.has_value()) object.Int("end_time", *info.end_time);
  object.StringIfNotEmpty("artifact_uri", info.artifact_uri);
  object.String("lifecycle_stage", info.lifecycle_stage);
  object.String("run_id", info.run_id);
  object.Close();
}

void AppendMetric(std::string& out, const Metric& metric) {
  ObjectWriter object(out);
  object.String("key", metric.key);
  object.Double("value", metric.value);
  object.Int("timestamp", metric.timestamp);
  object.Int("step", metric.step);
  object.Close();
}

void AppendDatasetInput(std::string& out, const DatasetInput& input) {
  ObjectWriter object(out);
  KeyValuesField(object, "tags", input.tags);
  std::string& nested = object.Nested("dataset");
  ObjectWriter dataset(nested);
  dataset.String("name", input.dataset.name);
  dataset.String("digest", input.dataset.digest);
  dataset.String("source_type", input.dataset.source_type);
  dataset.String("source", input.dataset.source);
  dataset.StringIfNotEmpty("schema", input.dataset.schema);
  dataset.StringIfNotEmpty("profile", input.dataset.profile);
  dataset.Close();
  object.Close();
}

void AppendRun(std::string& out, const Run& run) {
  ObjectWriter object(out);
  AppendRunInfo(object.Nested("info"), run.info);
  {
    ObjectWriter data(object.Nested("data"));
    if (!run.metrics.empty()) AppendArray(data.Nested("metrics"), run.metrics, AppendMetric);
    KeyValuesField(data, "params", run.params);
    KeyValuesField(data, "tags", run.tags);
    data.Close();
  }
  {
    ObjectWriter inputs(object.Nested("inputs"));
    if (!run.inputs.empty()) {
      AppendArray(inputs.Nested("dataset_inputs"), run.inputs, AppendDatasetInput);
    }
    inputs.Close();
  }
  object.Close();
}

// ---------------------------------------------------------------------------------------------
// Request reading.

Status MissingValue(std::string_view field) {
  return InvalidArgument("Missing value for required parameter '" + std::string(field) + "'." +
                         std::string(kApiDocsHint));
}

std::string TypeErrorMessage(std::string_view path, std::string_view expected, const Json& value) {
  std::string dumped = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (dumped.size() > 100) dumped = dumped.substr(0, 100) + "...";
  return "Invalid value " + dumped + " for parameter '" + std::string(path) + "' supplied: expected " +
         std::string(expected) + "." + std::string(kApiDocsHint);
}

Result<std::string> OptionalString(const Json& request, std::string_view field) {
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> value, GetString(request, field));
  return value.value_or(std::string());
}

// run_id, or its deprecated twin run_uuid; required.
Result<std::string> RequireRunId(const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> run_id, GetString(request, "run_id"));
  if (run_id.has_value() && !run_id->empty()) return std::move(*run_id);
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> run_uuid, GetString(request, "run_uuid"));
  if (run_uuid.has_value() && !run_uuid->empty()) return std::move(*run_uuid);
  return MissingValue("run_id");
}

// A member of an element of a repeated field (tags[2].key). Missing is "".
Result<std::string> MemberString(const Json& item, const char* member, const std::string& path) {
  auto it = item.find(member);
  if (it == item.end() || it->is_null()) return std::string();
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return it->dump();
  return InvalidArgument(TypeErrorMessage(path + "." + member, "a string", *it));
}

// Checks that `request[field]` is absent or a list; returns the list's elements (objects).
Result<const Json*> ListField(const Json& request, std::string_view field) {
  auto it = request.find(field);
  if (it == request.end() || it->is_null()) return static_cast<const Json*>(nullptr);
  if (!it->is_array()) return InvalidArgument(TypeErrorMessage(field, "a list", *it));
  for (size_t i = 0; i < it->size(); ++i) {
    if (!(*it)[i].is_object()) {
      return InvalidArgument(TypeErrorMessage(std::string(field) + "[" + std::to_string(i) + "]",
                                              "an object", (*it)[i]));
    }
  }
  return &*it;
}

// [{key, value}, ...] as sent for tags and params.
Result<std::vector<Tag>> GetKeyValues(const Json& request, std::string_view field) {
  std::vector<Tag> out;
  KILN_ASSIGN_OR_RETURN(const Json* list, ListField(request, field));
  if (list == nullptr) return out;
  out.reserve(list->size());
  for (size_t i = 0; i < list->size(); ++i) {
    const Json& item = (*list)[i];
    std::string path = std::string(field) + "[" + std::to_string(i) + "]";
    Tag tag;
    KILN_ASSIGN_OR_RETURN(tag.key, MemberString(item, "key", path));
    KILN_ASSIGN_OR_RETURN(tag.value, MemberString(item, "value", path));
    out.push_back(std::move(tag));
  }
  return out;
}

// One metric of log-batch or log-metric: key, value (number or "NaN"...), timestamp, step.
// `path` names the metric in errors ("metrics[3]"); empty for log-metric's top-level fields.
Result<Metric> ReadMetric(const Json& item, const std::string& path) {
  auto name = [&](const char* member) {
    return path.empty() ? std::string(member) : path + "." + member;
  };
  Metric metric;
  {
    auto it = item.find("key");
    if (it == item.end() || it->is_null() || (it->is_string() && it->get_ref<const std::string&>().empty())) {
      return MissingValue(name("key"));
    }
    if (!it->is_string()) return InvalidArgument(TypeErrorMessage(name("key"), "a string", *it));
    metric.key = it->get<std::string>();
  }
  Result<std::optional<double>> value = GetDouble(item, "value");
  if (!value.ok()) return InvalidArgument(TypeErrorMessage(name("value"), "a number", item["value"]));
  if (!value->has_value()) return MissingValue(name("value"));
  metric.value = **value;
  Result<std::optional<int64_t>> timestamp = GetInt64(item, "timestamp");
  if (!timestamp.ok()) {
    return InvalidArgument(TypeErrorMessage(name("timestamp"), "an integer", item["timestamp"]));
  }
  if (!timestamp->has_value()) return MissingValue(name("timestamp"));
  metric.timestamp = **timestamp;
  Result<std::optional<int64_t>> step = GetInt64(item, "step");
  if (!step.ok()) return InvalidArgument(TypeErrorMessage(name("step"), "an integer", item["step"]));
  metric.step = step->value_or(0);
  // MLflow 3.x: the logged model (and dataset) the point belongs to.
  for (auto [member, target] : {std::pair{"model_id", &metric.model_id},
                                std::pair{"dataset_name", &metric.dataset_name},
                                std::pair{"dataset_digest", &metric.dataset_digest}}) {
    auto it = item.find(member);
    if (it == item.end() || it->is_null()) continue;
    if (!it->is_string()) return InvalidArgument(TypeErrorMessage(name(member), "a string", *it));
    *target = it->get<std::string>();
  }
  return metric;
}

// max_results for searches: default `fallback`, 1..`threshold`, with MLflow's messages.
Result<int64_t> ReadMaxResults(const Json& request, int64_t fallback, int64_t threshold) {
  KILN_ASSIGN_OR_RETURN(std::optional<int64_t> max_results, GetInt64(request, "max_results"));
  if (!max_results.has_value()) return fallback;
  if (*max_results > threshold) {
    return InvalidArgument("Invalid value " + std::to_string(*max_results) +
                           " for parameter 'max_results' supplied. It must be at most " +
                           std::to_string(threshold));
  }
  if (*max_results < 1) {
    return InvalidArgument("Invalid value " + std::to_string(*max_results) +
                           " for parameter 'max_results' supplied. It must be a positive integer");
  }
  return *max_results;
}

Result<int64_t> ReadPageToken(const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string token, OptionalString(request, "page_token"));
  if (token.empty()) return int64_t{0};
  return tracking::DecodePageToken(token);
}

constexpr std::string_view kRunStatuses[] = {"RUNNING", "SCHEDULED", "FINISHED", "FAILED",
                                             "KILLED"};

// RunStatus by name, or by its proto number (1..5).
Result<std::optional<std::string>> ReadRunStatus(const Json& request) {
  auto it = request.find("status");
  if (it == request.end() || it->is_null()) return std::optional<std::string>();
  if (it->is_number_integer()) {
    int64_t number = it->get<int64_t>();
    if (number >= 1 && number <= 5) return std::optional<std::string>(std::string(kRunStatuses[number - 1]));
  } else if (it->is_string()) {
    const std::string& text = it->get_ref<const std::string&>();
    for (std::string_view status : kRunStatuses) {
      if (text == status) return std::optional<std::string>(text);
    }
    if (text.size() == 1 && text[0] >= '1' && text[0] <= '5') {
      return std::optional<std::string>(std::string(kRunStatuses[text[0] - '1']));
    }
  }
  return InvalidArgument(TypeErrorMessage(
      "status", "one of RUNNING, SCHEDULED, FINISHED, FAILED, KILLED", *it));
}

// ---------------------------------------------------------------------------------------------
// Handler plumbing.

using StringRpc = std::function<Result<std::string>(const Json& request)>;

// Like JsonHandler, but the RPC returns the reply body already written.
// `max_body_bytes`, when non-zero, rejects larger bodies before parsing (log-batch).
http::Handler StringHandler(StringRpc rpc, size_t max_body_bytes = 0) {
  return [rpc = std::move(rpc), max_body_bytes](const http::Request& request,
                                                http::Response& response) {
    if (max_body_bytes != 0 && request.body.size() > max_body_bytes) {
      WriteError(InvalidArgument("Batched logging API requests must be at most " +
                                 std::to_string(max_body_bytes) + " bytes, got a request of size " +
                                 std::to_string(request.body.size()) + "."),
                 response);
      return;
    }
    Result<Json> decoded = DecodeRequest(request);
    if (!decoded.ok()) {
      WriteError(decoded.status(), response);
      return;
    }
    Result<std::string> reply = [&]() -> Result<std::string> {
      // The readers above check types before access, so nlohmann should never throw; if some
      // path was missed, the cause is still the request's shape: answer 400, not 500.
      try {
        return rpc(*decoded);
      } catch (const Json::exception& error) {
        return InvalidArgument(std::string("invalid request: ") + error.what());
      }
    }();
    if (!reply.ok()) {
      WriteError(reply.status(), response);
      return;
    }
    response.status = 200;
    response.content_type = "application/json";
    response.body = std::move(*reply);
  };
}

const std::string kEmptyReply = "{}";

// ---------------------------------------------------------------------------------------------
// Experiments.

Result<std::string> CreateExperiment(TrackingStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string name, RequireString(request, "name"));
  KILN_ASSIGN_OR_RETURN(std::string artifact_location, OptionalString(request, "artifact_location"));
  if (artifact_location.find('#') != std::string::npos ||
      artifact_location.find(';') != std::string::npos) {
    return InvalidArgument("'artifact_location' URL can't include fragments or params.");
  }
  KILN_ASSIGN_OR_RETURN(std::vector<Tag> tags, GetKeyValues(request, "tags"));
  KILN_ASSIGN_OR_RETURN(std::string experiment_id,
                        store.CreateExperiment(name, artifact_location, tags));
  std::string out;
  ObjectWriter object(out);
  object.String("experiment_id", experiment_id);
  object.Close();
  return out;
}

std::string ExperimentReply(const Experiment& experiment) {
  std::string out;
  ObjectWriter object(out);
  AppendExperiment(object.Nested("experiment"), experiment);
  object.Close();
  return out;
}

Result<std::string> GetExperiment(TrackingStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string experiment_id, RequireString(request, "experiment_id"));
  KILN_ASSIGN_OR_RETURN(Experiment experiment, store.GetExperiment(experiment_id));
  return ExperimentReply(experiment);
}

Result<std::string> GetExperimentByName(TrackingStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string name, RequireString(request, "experiment_name"));
  KILN_ASSIGN_OR_RETURN(Experiment experiment, store.GetExperimentByName(name));
  return ExperimentReply(experiment);
}

Result<std::string> SearchExperiments(TrackingStore& store, const Json& request) {
  tracking::ExperimentSearchSpec spec;
  KILN_ASSIGN_OR_RETURN(spec.max_results,
                        ReadMaxResults(request, kSearchMaxResultsDefault, kSearchMaxResultsThreshold));
  KILN_ASSIGN_OR_RETURN(spec.offset, ReadPageToken(request));
  KILN_ASSIGN_OR_RETURN(spec.filter, OptionalString(request, "filter"));
  KILN_ASSIGN_OR_RETURN(spec.order_by, GetStringList(request, "order_by"));
  KILN_ASSIGN_OR_RETURN(std::string view_type, OptionalString(request, "view_type"));
  KILN_ASSIGN_OR_RETURN(spec.view_type, tracking::ParseViewType(view_type));
  KILN_ASSIGN_OR_RETURN(tracking::Page<Experiment> page, store.SearchExperiments(spec));
  std::string out;
  ObjectWriter object(out);
  if (!page.items.empty()) AppendArray(object.Nested("experiments"), page.items, AppendExperiment);
  object.StringIfNotEmpty("next_page_token", page.next_page_token);
  object.Close();
  return out;
}

Result<std::string> UpdateExperiment(TrackingStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string experiment_id, RequireString(request, "experiment_id"));
  KILN_ASSIGN_OR_RETURN(std::string new_name, RequireString(request, "new_name"));
  KILN_RETURN_IF_ERROR(store.RenameExperiment(experiment_id, new_name));
  return kEmptyReply;
}

Result<std::string> DeleteExperiment(TrackingStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string experiment_id, RequireString(request, "experiment_id"));
  KILN_RETURN_IF_ERROR(store.DeleteExperiment(experiment_id));
  return kEmptyReply;
}

Result<std::string> RestoreExperiment(TrackingStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string experiment_id, RequireString(request, "experiment_id"));
  KILN_RETURN_IF_ERROR(store.RestoreExperiment(experiment_id));
  return kEmptyReply;
}

Result<std::string> SetExperimentTag(TrackingStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string experiment_id, RequireString(request, "experiment_id"));
  Tag tag;
  KILN_ASSIGN_OR_RETURN(tag.key, RequireString(request, "key"));
  KILN_ASSIGN_OR_RETURN(tag.value, OptionalString(request, "value"));
  KILN_RETURN_IF_ERROR(store.SetExperimentTag(experiment_id, tag));
  return kEmptyReply;
}

Result<std::string> DeleteExperimentTag(TrackingStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string experiment_id, RequireString(request, "experiment_id"));
  KILN_ASSIGN_OR_RETURN(std::string key, RequireString(request, "key"));
  KILN_RETURN_IF_ERROR(store.DeleteExperimentTag(experiment_id, key));
  return kEmptyReply;
}

// ---------------------------------------------------------------------------------------------
// Runs.

std::string RunReply(const Run& run) {
  std::string out;
  out.reserve(512);
  ObjectWriter object(out);
  AppendRun(object.Nested("run"), run);
  object.Close();
  return out;
}

Result<std::string> CreateRun(TrackingStore& store, const Json& request) {
  tracking::CreateRunRequest create;
  KILN_ASSIGN_OR_RETURN(create.experiment_id, OptionalString(request, "experiment_id"));
  KILN_ASSIGN_OR_RETURN(create.user_id, OptionalString(request, "user_id"));
  KILN_ASSIGN_OR_RETURN(create.run_name, OptionalString(request, "run_name"));
  KILN_ASSIGN_OR_RETURN(create.start_time, GetInt64(request, "start_time"));
  KILN_ASSIGN_OR_RETURN(create.tags, GetKeyValues(request, "tags"));
  KILN_ASSIGN_OR_RETURN(Run run, store.CreateRun(create));
  return RunReply(run);
}

Result<std::string> GetRun(TrackingStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string run_id, RequireRunId(request));
  KILN_ASSIGN_OR_RETURN(Run run, store.GetRun(run_id));
  return RunReply(run);
}

Result<std::string> UpdateRun(TrackingStore& store, const Json& request) {
  tracking::UpdateRunRequest update;
  KILN_ASSIGN_OR_RETURN(update.run_id, RequireRunId(request));
  KILN_ASSIGN_OR_RETURN(update.status, ReadRunStatus(request));
  KILN_ASSIGN_OR_RETURN(update.end_time, GetInt64(request, "end_time"));
  KILN_ASSIGN_OR_RETURN(update.run_name, GetString(request, "run_name"));
  KILN_ASSIGN_OR_RETURN(RunInfo info, store.UpdateRun(update));
  std::string out;
  ObjectWriter object(out);
  AppendRunInfo(object.Nested("run_info"), info);
  object.Close();
  return out;
}

Result<std::string> DeleteRun(TrackingStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string run_id, RequireRunId(request));
  KILN_RETURN_IF_ERROR(store.DeleteRun(run_id));
  return kEmptyReply;
}

Result<std::string> RestoreRun(TrackingStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string run_id, RequireRunId(request));
  KILN_RETURN_IF_ERROR(store.RestoreRun(run_id));
  return kEmptyReply;
}

Result<std::string> LogMetric(TrackingStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string run_id, RequireRunId(request));
  KILN_ASSIGN_OR_RETURN(Metric metric, ReadMetric(request, ""));
  KILN_RETURN_IF_ERROR(store.LogMetric(run_id, metric));
  return kEmptyReply;
}

Result<std::string> LogParam(TrackingStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string run_id, RequireRunId(request));
  Tag param;
  KILN_ASSIGN_OR_RETURN(param.key, RequireString(request, "key"));
  KILN_ASSIGN_OR_RETURN(param.value, OptionalString(request, "value"));
  KILN_RETURN_IF_ERROR(store.LogParam(run_id, param));
  return kEmptyReply;
}

Result<std::string> SetTag(TrackingStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string run_id, RequireRunId(request));
  Tag tag;
  KILN_ASSIGN_OR_RETURN(tag.key, RequireString(request, "key"));
  KILN_ASSIGN_OR_RETURN(tag.value, OptionalString(request, "value"));
  KILN_RETURN_IF_ERROR(store.SetTag(run_id, tag));
  return kEmptyReply;
}

Result<std::string> DeleteTag(TrackingStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string run_id, RequireRunId(request));
  KILN_ASSIGN_OR_RETURN(std::string key, RequireString(request, "key"));
  KILN_RETURN_IF_ERROR(store.DeleteTag(run_id, key));
  return kEmptyReply;
}

Result<std::string> LogBatch(TrackingStore& store, const Json& request) {
  tracking::LogBatchRequest batch;
  KILN_ASSIGN_OR_RETURN(batch.run_id, RequireRunId(request));
  KILN_ASSIGN_OR_RETURN(const Json* metrics, ListField(request, "metrics"));
  if (metrics != nullptr) {
    batch.metrics.reserve(metrics->size());
    for (size_t i = 0; i < metrics->size(); ++i) {
      KILN_ASSIGN_OR_RETURN(Metric metric,
                            ReadMetric((*metrics)[i], "metrics[" + std::to_string(i) + "]"));
      batch.metrics.push_back(std::move(metric));
    }
  }
  KILN_ASSIGN_OR_RETURN(batch.params, GetKeyValues(request, "params"));
  KILN_ASSIGN_OR_RETURN(batch.tags, GetKeyValues(request, "tags"));
  KILN_RETURN_IF_ERROR(store.LogBatch(batch));
  return kEmptyReply;
}

// A log-batch body of the usual shape, read with simdjson: building the nlohmann tree of 1,000
// metrics costs several times the database's work. Returns nullopt for anything unusual (malformed
// JSON, run_uuid, a string where a number goes, a float step, a missing, empty, null or repeated
// member), and the caller then takes the general path, which answers exactly as MLflow does. For
// a body it accepts, the request is the one the general path would build.
std::optional<tracking::LogBatchRequest> ReadPlainLogBatch(std::string_view body) {
  using simdjson::SUCCESS;
  thread_local simdjson::dom::parser parser;
  simdjson::dom::object root;
  if (parser.parse(body.data(), body.size()).get(root) != SUCCESS) return std::nullopt;
  auto read_string = [](simdjson::dom::element value, std::string& out) {
    std::string_view text;
    if (value.get(text) != SUCCESS) return false;
    out.assign(text);
    return true;
  };
  auto read_int = [](simdjson::dom::element value, int64_t& out) {
    return value.is_int64() && value.get(out) == SUCCESS;
  };
  auto read_metric = [&](simdjson::dom::element element, Metric& metric) {
    simdjson::dom::object item;
    if (element.get(item) != SUCCESS) return false;
    unsigned seen = 0;
    for (auto [key, value] : item) {
      unsigned bit = key == "key"              ? 1u
                     : key == "value"          ? 2u
                     : key == "timestamp"      ? 4u
                     : key == "step"           ? 8u
                     : key == "model_id"       ? 16u
                     : key == "dataset_name"   ? 32u
                     : key == "dataset_digest" ? 64u
                                               : 0u;
      if ((seen & bit) != 0) return false;
      seen |= bit;
      bool good = true;
      switch (bit) {
        case 1: good = read_string(value, metric.key) && !metric.key.empty(); break;
        case 2:
          if (value.is_int64()) {
            metric.value = static_cast<double>(value.get_int64().value_unsafe());
          } else if (value.is_uint64()) {
            metric.value = static_cast<double>(value.get_uint64().value_unsafe());
          } else {
            good = value.get(metric.value) == SUCCESS;
          }
          break;
        case 4: good = read_int(value, metric.timestamp); break;
        case 8: good = read_int(value, metric.step); break;
        case 16: good = read_string(value, metric.model_id); break;
        case 32: good = read_string(value, metric.dataset_name); break;
        case 64: good = read_string(value, metric.dataset_digest); break;
        default: break;  // members MLflow does not read are ignored, as on the general path
      }
      if (!good) return false;
    }
    return (seen & 7u) == 7u;
  };
  auto read_key_values = [&](simdjson::dom::element element, std::vector<Tag>& out) {
    simdjson::dom::array list;
    if (element.get(list) != SUCCESS) return false;
    out.reserve(list.size());
    for (simdjson::dom::element entry : list) {
      simdjson::dom::object item;
      if (entry.get(item) != SUCCESS) return false;
      Tag& tag = out.emplace_back();
      unsigned seen = 0;
      for (auto [key, value] : item) {
        unsigned bit = key == "key" ? 1u : key == "value" ? 2u : 0u;
        if ((seen & bit) != 0) return false;
        seen |= bit;
        if (bit != 0 && !read_string(value, bit == 1 ? tag.key : tag.value)) return false;
      }
      if (seen != 3u) return false;
    }
    return true;
  };

  tracking::LogBatchRequest batch;
  unsigned seen = 0;
  for (auto [key, value] : root) {
    unsigned bit = key == "run_id"     ? 1u
                   : key == "metrics"  ? 2u
                   : key == "params"   ? 4u
                   : key == "tags"     ? 8u
                   : key == "run_uuid" ? 16u
                                       : 0u;
    if ((seen & bit) != 0 || bit == 16u) return std::nullopt;
    seen |= bit;
    bool good = true;
    if (bit == 1) {
      good = read_string(value, batch.run_id) && !batch.run_id.empty();
    } else if (bit == 2) {
      simdjson::dom::array metrics;
      good = value.get(metrics) == SUCCESS;
      if (good) batch.metrics.reserve(metrics.size());
      for (simdjson::dom::element element : metrics) {
        if (!good) break;
        good = read_metric(element, batch.metrics.emplace_back());
      }
    } else if (bit == 4) {
      good = read_key_values(value, batch.params);
    } else if (bit == 8) {
      good = read_key_values(value, batch.tags);
    }
    if (!good) return std::nullopt;
  }
  if ((seen & 1u) == 0) return std::nullopt;
  return batch;
}

// log-batch: the simdjson path for plain JSON bodies, else the general one.
http::Handler LogBatchHandler(TrackingStore* store) {
  http::Handler general =
      StringHandler([store](const Json& request) { return LogBatch(*store, request); },
                    kMaxBatchRequestBytes);
  return [store, general](const http::Request& request, http::Response& response) {
    if (request.body.size() <= kMaxBatchRequestBytes && request.method == "POST" &&
        request.Header("Content-Type") == "application/json") {
      if (std::optional<tracking::LogBatchRequest> batch = ReadPlainLogBatch(request.body)) {
        Status status = store->LogBatch(*batch);
        if (!status.ok()) {
          WriteError(status, response);
          return;
        }
        response.status = 200;
        response.content_type = "application/json";
        response.body = kEmptyReply;
        return;
      }
    }
    general(request, response);
  };
}

Result<std::string> LogModel(TrackingStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string run_id, RequireRunId(request));
  KILN_ASSIGN_OR_RETURN(std::string model_json, RequireString(request, "model_json"));
  // The store checks that model_json is an object with MLflow's mandatory fields.
  KILN_RETURN_IF_ERROR(store.LogModel(run_id, model_json));
  return kEmptyReply;
}

Result<std::string> LogInputs(TrackingStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string run_id, RequireRunId(request));
  KILN_ASSIGN_OR_RETURN(const Json* datasets, ListField(request, "datasets"));
  std::vector<DatasetInput> inputs;
  if (datasets != nullptr) {
    for (size_t i = 0; i < datasets->size(); ++i) {
      const Json& item = (*datasets)[i];
      std::string path = "datasets[" + std::to_string(i) + "]";
      DatasetInput input;
      KILN_ASSIGN_OR_RETURN(input.tags, GetKeyValues(item, "tags"));
      auto dataset = item.find("dataset");
      if (dataset == item.end() || dataset->is_null()) return MissingValue(path + ".dataset");
      if (!dataset->is_object()) {
        return InvalidArgument(TypeErrorMessage(path + ".dataset", "an object", *dataset));
      }
      std::string dataset_path = path + ".dataset";
      struct Field {
        const char* name;
        std::string* target;
        bool required;
      };
      const Field fields[] = {{"name", &input.dataset.name, true},
                              {"digest", &input.dataset.digest, true},
                              {"source_type", &input.dataset.source_type, true},
                              {"source", &input.dataset.source, true},
                              {"schema", &input.dataset.schema, false},
                              {"profile", &input.dataset.profile, false}};
      for (const Field& field : fields) {
        KILN_ASSIGN_OR_RETURN(*field.target, MemberString(*dataset, field.name, dataset_path));
        if (field.required && field.target->empty()) {
          return MissingValue(dataset_path + "." + field.name);
        }
      }
      inputs.push_back(std::move(input));
    }
  }
  KILN_RETURN_IF_ERROR(store.LogInputs(run_id, inputs));
  return kEmptyReply;
}

Result<std::string> SearchRuns(TrackingStore& store, const Json& request) {
  tracking::RunSearchSpec spec;
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> experiment_ids,
                        GetStringList(request, "experiment_ids"));
  KILN_ASSIGN_OR_RETURN(spec.max_results,
                        ReadMaxResults(request, kSearchMaxResultsDefault, kSearchMaxResultsThreshold));
  KILN_ASSIGN_OR_RETURN(spec.offset, ReadPageToken(request));
  KILN_ASSIGN_OR_RETURN(spec.filter, OptionalString(request, "filter"));
  KILN_ASSIGN_OR_RETURN(spec.order_by, GetStringList(request, "order_by"));
  KILN_ASSIGN_OR_RETURN(std::string view_type, OptionalString(request, "run_view_type"));
  KILN_ASSIGN_OR_RETURN(spec.view_type, tracking::ParseViewType(view_type));
  // Experiment ids are integers in the database; an id that is not one names no experiment.
  for (const std::string& id : experiment_ids) {
    int64_t value = 0;
    auto [end, error] = std::from_chars(id.data(), id.data() + id.size(), value);
    if (error == std::errc() && end == id.data() + id.size()) spec.experiment_ids.push_back(value);
  }
  if (spec.experiment_ids.empty()) return kEmptyReply;
  KILN_ASSIGN_OR_RETURN(tracking::Page<Run> page, store.SearchRuns(spec));
  std::string out;
  out.reserve(256 + page.items.size() * 768);
  ObjectWriter object(out);
  if (!page.items.empty()) AppendArray(object.Nested("runs"), page.items, AppendRun);
  object.StringIfNotEmpty("next_page_token", page.next_page_token);
  object.Close();
  return out;
}

// ---------------------------------------------------------------------------------------------
// Metric history.

Result<std::string> GetMetricHistory(TrackingStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string run_id, RequireRunId(request));
  KILN_ASSIGN_OR_RETURN(std::string metric_key, RequireString(request, "metric_key"));
  KILN_ASSIGN_OR_RETURN(int64_t max_results,
                        ReadMaxResults(request, kMetricHistoryMaxResults, kMetricHistoryMaxResults));
  KILN_ASSIGN_OR_RETURN(std::string page_token, OptionalString(request, "page_token"));
  KILN_ASSIGN_OR_RETURN(tracking::Page<Metric> page,
                        store.GetMetricHistory(run_id, metric_key, max_results, page_token));
  std::string out;
  out.reserve(64 + page.items.size() * 64);
  ObjectWriter object(out);
  if (!page.items.empty()) AppendArray(object.Nested("metrics"), page.items, AppendMetric);
  object.StringIfNotEmpty("next_page_token", page.next_page_token);
  object.Close();
  return out;
}

struct MetricWithRunId {
  Metric metric;
  const std::string* run_id;
};

void AppendMetricWithRunId(std::string& out, const MetricWithRunId& entry) {
  ObjectWriter object(out);
  object.String("key", entry.metric.key);
  object.Double("value", entry.metric.value);
  object.Int("timestamp", entry.metric.timestamp);
  object.Int("step", entry.metric.step);
  object.String("run_id", *entry.run_id);
  object.Close();
}

// Evenly spaced picks from sorted distinct `steps`, always keeping the first and the last, so a
// chart of a long history keeps its shape (the UI's sampling for get-history-bulk-interval).
std::set<int64_t> SampleSteps(const std::vector<int64_t>& steps, int64_t max_results) {
  std::set<int64_t> picked;
  if (static_cast<int64_t>(steps.size()) <= max_results) {
    picked.insert(steps.begin(), steps.end());
    return picked;
  }
  if (max_results == 1) {
    picked.insert(steps.front());
    return picked;
  }
  const double stride = static_cast<double>(steps.size() - 1) / static_cast<double>(max_results - 1);
  for (int64_t i = 0; i < max_results; ++i) {
    size_t index = static_cast<size_t>(std::llround(static_cast<double>(i) * stride));
    picked.insert(steps[std::min(index, steps.size() - 1)]);
  }
  return picked;
}

Result<std::string> GetMetricHistoryBulkInterval(TrackingStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> run_ids, GetStringList(request, "run_ids"));
  if (run_ids.empty()) return MissingValue("run_ids");
  if (run_ids.size() > kBulkMaxRuns) {
    return InvalidArgument("GetMetricHistoryBulkInterval request must specify at most " +
                           std::to_string(kBulkMaxRuns) + " run_ids. Received " +
                           std::to_string(run_ids.size()) + " run_ids.");
  }
  KILN_ASSIGN_OR_RETURN(std::string metric_key, RequireString(request, "metric_key"));
  KILN_ASSIGN_OR_RETURN(std::optional<int64_t> start_step, GetInt64(request, "start_step"));
  KILN_ASSIGN_OR_RETURN(std::optional<int64_t> end_step, GetInt64(request, "end_step"));
  if (start_step.has_value() != end_step.has_value()) {
    return InvalidArgument("If either start step or end step are specified, both must be specified.");
  }
  if (start_step.has_value() && *start_step > *end_step) {
    return InvalidArgument("end_step must be greater than start_step. Found start_step=" +
                           std::to_string(*start_step) + " and end_step=" +
                           std::to_string(*end_step) + ".");
  }
  KILN_ASSIGN_OR_RETURN(int64_t max_results,
                        ReadMaxResults(request, kBulkMaxResultsPerRun, kBulkMaxResultsPerRun));
  std::sort(run_ids.begin(), run_ids.end());
  run_ids.erase(std::unique(run_ids.begin(), run_ids.end()), run_ids.end());

  std::vector<MetricWithRunId> entries;
  for (const std::string& run_id : run_ids) {
    KILN_ASSIGN_OR_RETURN(std::vector<Metric> history, store.GetFullMetricHistory(run_id, metric_key));
    std::vector<int64_t> steps;
    std::vector<Metric> in_range;
    for (Metric& metric : history) {
      if (start_step.has_value() && (metric.step < *start_step || metric.step > *end_step)) continue;
      steps.push_back(metric.step);
      in_range.push_back(std::move(metric));
    }
    std::sort(steps.begin(), steps.end());
    steps.erase(std::unique(steps.begin(), steps.end()), steps.end());
    std::set<int64_t> picked = SampleSteps(steps, max_results);
    std::stable_sort(in_range.begin(), in_range.end(), [](const Metric& a, const Metric& b) {
      return a.step != b.step ? a.step < b.step : a.timestamp < b.timestamp;
    });
    for (Metric& metric : in_range) {
      if (picked.count(metric.step) != 0) entries.push_back({std::move(metric), &run_id});
    }
  }
  std::string out;
  ObjectWriter object(out);
  if (!entries.empty()) AppendArray(object.Nested("metrics"), entries, AppendMetricWithRunId);
  object.Close();
  return out;
}

// The UI's older bulk endpoint (ajax-api only in MLflow): every point of one metric for several
// runs, each with its run_id.
Result<std::string> GetMetricHistoryBulk(TrackingStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> run_ids, GetStringList(request, "run_id"));
  if (run_ids.empty()) return MissingValue("run_id");
  if (run_ids.size() > kBulkMaxRuns) {
    return InvalidArgument("GetMetricHistoryBulk request must specify at most " +
                           std::to_string(kBulkMaxRuns) + " run_ids. Received " +
                           std::to_string(run_ids.size()) + " run_ids.");
  }
  KILN_ASSIGN_OR_RETURN(std::string metric_key, RequireString(request, "metric_key"));
  KILN_ASSIGN_OR_RETURN(int64_t max_results,
                        ReadMaxResults(request, kMetricHistoryMaxResults, kMetricHistoryMaxResults));
  std::vector<MetricWithRunId> entries;
  for (const std::string& run_id : run_ids) {
    KILN_ASSIGN_OR_RETURN(std::vector<Metric> history, store.GetFullMetricHistory(run_id, metric_key));
    for (Metric& metric : history) entries.push_back({std::move(metric), &run_id});
  }
  std::stable_sort(entries.begin(), entries.end(),
                   [](const MetricWithRunId& a, const MetricWithRunId& b) {
                     if (*a.run_id != *b.run_id) return *a.run_id < *b.run_id;
                     if (a.metric.timestamp != b.metric.timestamp) {
                       return a.metric.timestamp < b.metric.timestamp;
                     }
                     return a.metric.step < b.metric.step;
                   });
  if (static_cast<int64_t>(entries.size()) > max_results) entries.resize(max_results);
  std::string out;
  ObjectWriter object(out);
  if (!entries.empty()) AppendArray(object.Nested("metrics"), entries, AppendMetricWithRunId);
  object.Close();
  return out;
}

}  // namespace

void RegisterTrackingRoutes(http::Router& router, TrackingStore& tracking) {
  TrackingStore* store = &tracking;
  auto bind = [store](Result<std::string> (*rpc)(TrackingStore&, const Json&)) {
    return [store, rpc](const Json& request) { return rpc(*store, request); };
  };
  auto add = [&](const char* method, std::string_view path,
                 Result<std::string> (*rpc)(TrackingStore&, const Json&)) {
    AddMlflowRoute(router, method, path, StringHandler(bind(rpc)));
  };

  add("POST", "/experiments/create", CreateExperiment);
  add("GET", "/experiments/get", GetExperiment);
  add("GET", "/experiments/get-by-name", GetExperimentByName);
  add("GET", "/experiments/search", SearchExperiments);
  add("POST", "/experiments/search", SearchExperiments);
  add("POST", "/experiments/update", UpdateExperiment);
  add("POST", "/experiments/delete", DeleteExperiment);
  add("POST", "/experiments/restore", RestoreExperiment);
  add("POST", "/experiments/set-experiment-tag", SetExperimentTag);
  add("POST", "/experiments/delete-experiment-tag", DeleteExperimentTag);

  add("POST", "/runs/create", CreateRun);
  add("POST", "/runs/update", UpdateRun);
  add("POST", "/runs/delete", DeleteRun);
  add("POST", "/runs/restore", RestoreRun);
  add("GET", "/runs/get", GetRun);
  add("POST", "/runs/log-metric", LogMetric);
  add("POST", "/runs/log-parameter", LogParam);
  add("POST", "/runs/set-tag", SetTag);
  add("POST", "/runs/delete-tag", DeleteTag);
  AddMlflowRoute(router, "POST", "/runs/log-batch", LogBatchHandler(store));
  add("POST", "/runs/search", SearchRuns);
  add("POST", "/runs/log-model", LogModel);
  add("POST", "/runs/log-inputs", LogInputs);

  add("GET", "/metrics/get-history", GetMetricHistory);
  add("GET", "/metrics/get-history-bulk-interval", GetMetricHistoryBulkInterval);
  add("GET", "/metrics/get-history-bulk", GetMetricHistoryBulk);
}

}  // namespace kiln::api
