#include "kiln/tracking/logged_model_store.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kiln/core/ids.h"
#include "kiln/tracking/search.h"
#include "kiln/tracking/search_filter.h"
#include "kiln/tracking/tracking_validation.h"

namespace kiln::tracking {
namespace {

using store::Rows;
using store::Transaction;
using store::Value;

constexpr std::string_view kActive = "active";
constexpr std::string_view kDeleted = "deleted";
// Tags, params and metrics are logging, as on runs (DESIGN.md, Storage): they survive a crash of
// kiln but may lose their last moments on power loss. Creating, finalizing and deleting a model
// keep the default, power-loss durability.
constexpr store::Durability kLoggingDurability = store::Durability::kProcessCrash;
// MLflow's column limits (dbmodels/models.py: SqlLoggedModel, SqlLoggedModelTag/Param).
constexpr size_t kMaxNameLength = 500;
constexpr size_t kMaxModelTypeLength = 500;
constexpr size_t kMaxKeyLength = 255;
// Ids per IN (...) list: far below SQLite's and PostgreSQL's limits on bound parameters.
constexpr size_t kInListChunk = 500;

constexpr std::string_view kModelColumns =
    "model_id, experiment_id, name, artifact_location, creation_timestamp_ms, "
    "last_updated_timestamp_ms, status, status_message, model_type, source_run_id, "
    "lifecycle_stage";

std::string Placeholders(size_t count) {
  std::string out;
  for (size_t i = 0; i < count; ++i) out += i == 0 ? "?" : ", ?";
  return out;
}

std::string Quote(std::string_view text) { return "'" + std::string(text) + "'"; }

Status ModelNotFound(std::string_view model_id) {
  return NotFound("Logged model with ID " + Quote(model_id) + " not found.");
}

std::string AppendUriPath(std::string base, std::string_view tail) {
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + "/" + std::string(tail);
}

Result<int64_t> ParseExperimentId(std::string_view text, bool for_search) {
  int64_t id = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
    if (for_search) return InvalidArgument("Invalid experiment ID: " + Quote(text));
    return NotFound("No Experiment with id=" + std::string(text) + " exists");
  }
  return id;
}

// MLflow's _validate_logged_model_name.
Status ValidateModelName(std::string_view name) {
  constexpr std::string_view kBadChars = "/:.%\"'";
  if (name.empty() || name.find_first_of(kBadChars) != std::string_view::npos) {
    return InvalidArgument("Invalid model name (" + Quote(name) +
                           ") provided. Model name must be a non-empty string and cannot "
                           "contain the following characters: ('/', ':', '.', '%', '\"', \"'\")");
  }
  return validation::ValidateLength("Model name", name, kMaxNameLength);
}

Status ValidateKey(std::string_view kind, std::string_view key) {
  if (key.empty()) return InvalidArgument(std::string(kind) + " key must be a non-empty string");
  return validation::ValidateLength(std::string(kind) + " key", key, kMaxKeyLength);
}

// Tags with repeated keys collapse to the last value, as repeated upserts would.
std::vector<Tag> LastValuePerKey(const std::vector<Tag>& tags) {
  std::map<std::string, std::string> by_key;
  for (const Tag& tag : tags) by_key[tag.key] = tag.value;
  std::vector<Tag> out;
  out.reserve(by_key.size());
  for (auto& [key, value] : by_key) out.push_back({key, value});
  return out;
}

// Params with repeated keys must agree; returns them once each.
Result<std::vector<Tag>> UniqueParams(const std::vector<Tag>& params) {
  std::map<std::string, std::string> by_key;
  for (const Tag& param : params) {
    KILN_RETURN_IF_ERROR(ValidateKey("Param", param.key));
    auto [it, inserted] = by_key.emplace(param.key, param.value);
    if (!inserted && it->second != param.value) {
      return InvalidArgument("Duplicate param key " + Quote(param.key) +
                             " with different values: " + Quote(it->second) + " and " +
                             Quote(param.value));
    }
  }
  std::vector<Tag> out;
  out.reserve(by_key.size());
  for (auto& [key, value] : by_key) out.push_back({key, value});
  return out;
}

Status ValidateTags(const std::vector<Tag>& tags) {
  for (const Tag& tag : tags) KILN_RETURN_IF_ERROR(ValidateKey("Tag", tag.key));
  return Status::Ok();
}

Value OptionalText(const std::string& text) {
  if (text.empty()) return store::Null();
  return text;
}

// --- Reading -----------------------------------------------------------------------------------

// Loads the models with these ids (all of them, deleted ones included) with their tags, params
// and metrics, one query per table per kInListChunk ids; returned in the order of `ids`, skipping
// ids that do not exist.
Result<std::vector<LoggedModel>> LoadModels(Transaction& tx, const std::vector<std::string>& ids) {
  std::map<std::string, LoggedModel> by_id;
  for (size_t begin = 0; begin < ids.size(); begin += kInListChunk) {
    size_t end = std::min(ids.size(), begin + kInListChunk);
    std::vector<Value> params(ids.begin() + begin, ids.begin() + end);
    std::string in = "(" + Placeholders(params.size()) + ")";

    KILN_ASSIGN_OR_RETURN(
        Rows info, tx.Query("SELECT " + std::string(kModelColumns) +
                                " FROM logged_models WHERE model_id IN " + in,
                            params));
    for (size_t i = 0; i < info.size(); ++i) {
      LoggedModel model;
      model.model_id = info.Text(i, 0);
      model.experiment_id = std::to_string(info.Int(i, 1));
      model.name = info.Text(i, 2);
      model.artifact_location = info.Text(i, 3);
      model.creation_timestamp_ms = info.Int(i, 4);
      model.last_updated_timestamp_ms = info.Int(i, 5);
      Result<LoggedModelStatus> status = ParseLoggedModelStatus(info.Text(i, 6));
      if (!status.ok()) {
        return Internal("logged model " + model.model_id + " has status " +
                        Quote(info.Text(i, 6)) + " in the database");
      }
      model.status = *status;
      model.status_message = info.Text(i, 7);
      model.model_type = info.Text(i, 8);
      model.source_run_id = info.Text(i, 9);
      model.lifecycle_stage = info.Text(i, 10);
      by_id.emplace(model.model_id, std::move(model));
    }

    KILN_ASSIGN_OR_RETURN(Rows tags, tx.Query("SELECT model_id, tag_key, tag_value FROM "
                                              "logged_model_tags WHERE model_id IN " + in +
                                                  " ORDER BY model_id, tag_key",
                                              params));
    for (size_t i = 0; i < tags.size(); ++i) {
      auto it = by_id.find(tags.Text(i, 0));
      if (it != by_id.end()) it->second.tags.push_back({tags.Text(i, 1), tags.Text(i, 2)});
    }

    KILN_ASSIGN_OR_RETURN(Rows model_params,
                          tx.Query("SELECT model_id, param_key, param_value FROM "
                                   "logged_model_params WHERE model_id IN " + in +
                                       " ORDER BY model_id, param_key",
                                   params));
    for (size_t i = 0; i < model_params.size(); ++i) {
      auto it = by_id.find(model_params.Text(i, 0));
      if (it != by_id.end()) {
        it->second.params.push_back({model_params.Text(i, 1), model_params.Text(i, 2)});
      }
    }

    KILN_ASSIGN_OR_RETURN(
        Rows metrics,
        tx.Query("SELECT model_id, metric_name, metric_value, is_nan, metric_timestamp_ms, "
                 "metric_step, run_id, dataset_name, dataset_digest FROM logged_model_metrics "
                 "WHERE model_id IN " + in +
                     " ORDER BY model_id, metric_name, metric_step, metric_timestamp_ms, run_id",
                 params));
    for (size_t i = 0; i < metrics.size(); ++i) {
      auto it = by_id.find(metrics.Text(i, 0));
      if (it == by_id.end()) continue;
      LoggedModelMetric metric;
      metric.key = metrics.Text(i, 1);
      metric.value = metrics.Int(i, 3) != 0 ? std::numeric_limits<double>::quiet_NaN()
                                            : metrics.Double(i, 2);
      metric.timestamp = metrics.Int(i, 4);
      metric.step = metrics.Int(i, 5);
      metric.run_id = metrics.Text(i, 6);
      metric.dataset_name = metrics.Text(i, 7);
      metric.dataset_digest = metrics.Text(i, 8);
      it->second.metrics.push_back(std::move(metric));
    }
  }
  std::vector<LoggedModel> out;
  out.reserve(by_id.size());
  for (const std::string& id : ids) {
    auto it = by_id.find(id);
    if (it != by_id.end()) out.push_back(it->second);
  }
  return out;
}

// NotFound unless the model exists (deleted or not).
Status RequireModel(Transaction& tx, const std::string& model_id) {
  KILN_ASSIGN_OR_RETURN(Rows rows,
                        tx.Query("SELECT 1 FROM logged_models WHERE model_id = ?", {model_id}));
  if (rows.empty()) return ModelNotFound(model_id);
  return Status::Ok();
}

Status Touch(Transaction& tx, const std::string& model_id, int64_t now) {
  return tx
      .Exec("UPDATE logged_models SET last_updated_timestamp_ms = ? WHERE model_id = ?",
            {now, model_id})
      .status();
}

// Inserts params the model does not have yet; the same value again is fine, another value is
// InvalidArgument (params are immutable, as runs' are).
Status InsertParams(Transaction& tx, const std::string& model_id, const std::vector<Tag>& params) {
  if (params.empty()) return Status::Ok();
  KILN_ASSIGN_OR_RETURN(Rows existing, tx.Query("SELECT param_key, param_value FROM "
                                                "logged_model_params WHERE model_id = ?",
                                                {model_id}));
  std::map<std::string, std::string> logged;
  for (size_t i = 0; i < existing.size(); ++i) logged[existing.Text(i, 0)] = existing.Text(i, 1);
  std::vector<std::vector<Value>> rows;
  for (const Tag& param : params) {
    auto it = logged.find(param.key);
    if (it == logged.end()) {
      rows.push_back({model_id, param.key, param.value});
    } else if (it->second != param.value) {
      return InvalidArgument("Changing param values is not allowed. Param with key=" +
                             Quote(param.key) + " was already logged with value=" +
                             Quote(it->second) + " for logged model " + Quote(model_id) +
                             ". Attempted logging new value " + Quote(param.value) + ".");
    }
  }
  return tx
      .ExecMany("INSERT INTO logged_model_params (model_id, param_key, param_value) "
                "VALUES (?, ?, ?) ON CONFLICT (model_id, param_key) DO NOTHING",
                rows)
      .status();
}

Status UpsertTags(Transaction& tx, const std::string& model_id, const std::vector<Tag>& tags) {
  std::vector<std::vector<Value>> rows;
  rows.reserve(tags.size());
  for (const Tag& tag : tags) rows.push_back({model_id, tag.key, tag.value});
  return tx
      .ExecMany("INSERT INTO logged_model_tags (model_id, tag_key, tag_value) VALUES (?, ?, ?) "
                "ON CONFLICT (model_id, tag_key) DO UPDATE SET tag_value = excluded.tag_value",
                rows)
      .status();
}

// --- Search ------------------------------------------------------------------------------------

enum class ColumnKind { kText, kStatus, kTimestamp, kExperimentId };

struct AttributeColumn {
  std::string_view column;
  ColumnKind kind;
};

// Attribute names a filter or order_by may use, with MLflow's aliases (SqlLoggedModel.ALIASES).
std::optional<AttributeColumn> FindAttribute(std::string_view name) {
  static const std::map<std::string_view, AttributeColumn> kAttributes = {
      {"name", {"name", ColumnKind::kText}},
      {"model_id", {"model_id", ColumnKind::kText}},
      {"model_type", {"model_type", ColumnKind::kText}},
      {"source_run_id", {"source_run_id", ColumnKind::kText}},
      {"status", {"status", ColumnKind::kStatus}},
      {"experiment_id", {"experiment_id", ColumnKind::kExperimentId}},
      {"creation_timestamp_ms", {"creation_timestamp_ms", ColumnKind::kTimestamp}},
      {"creation_timestamp", {"creation_timestamp_ms", ColumnKind::kTimestamp}},
      {"creation_time", {"creation_timestamp_ms", ColumnKind::kTimestamp}},
      {"last_updated_timestamp_ms", {"last_updated_timestamp_ms", ColumnKind::kTimestamp}},
      {"last_updated_timestamp", {"last_updated_timestamp_ms", ColumnKind::kTimestamp}},
  };
  auto it = kAttributes.find(name);
  if (it == kAttributes.end()) return std::nullopt;
  return it->second;
}

constexpr std::string_view kStringComparators = "('=', '!=', 'LIKE', 'ILIKE', 'IN', 'NOT IN')";
constexpr std::string_view kNumericComparators = "('=', '!=', '<', '<=', '>', '>=')";

bool IsStringComparator(std::string_view op) {
  return op == "=" || op == "!=" || op == "LIKE" || op == "ILIKE" || op == "IN" || op == "NOT IN";
}
bool IsNumericComparator(std::string_view op) {
  return op == "=" || op == "!=" || op == "<" || op == "<=" || op == ">" || op == ">=";
}

class SearchSqlBuilder {
 public:
  SearchSqlBuilder(const LoggedModelSearchSpec& spec, const store::Dialect& dialect)
      : spec_(spec), dialect_(dialect) {}

  Result<SqlStatement> Build() {
    if (spec_.max_results < 1 || spec_.max_results > kMaxLoggedModelSearchResults) {
      return InvalidArgument("Invalid value " + std::to_string(spec_.max_results) +
                             " for parameter 'max_results' supplied: it must be between 1 and " +
                             std::to_string(kMaxLoggedModelSearchResults));
    }
    if (spec_.offset < 0) return InvalidArgument("Invalid page token");
    for (const LoggedModelDatasetFilter& dataset : spec_.datasets) {
      if (dataset.dataset_name.empty()) {
        return InvalidArgument("`dataset_name` in the `datasets` clause must be specified.");
      }
    }
    std::vector<Value> experiment_ids;
    for (const std::string& id : spec_.experiment_ids) {
      KILN_ASSIGN_OR_RETURN(int64_t parsed, ParseExperimentId(id, /*for_search=*/true));
      experiment_ids.push_back(parsed);
    }
    assert(!experiment_ids.empty() && "callers return an empty page for no experiments");

    sql_ = "SELECT m.model_id FROM logged_models m WHERE m.lifecycle_stage = ? AND "
           "m.experiment_id IN (" + Placeholders(experiment_ids.size()) + ")";
    params_.push_back(std::string(kActive));
    params_.insert(params_.end(), experiment_ids.begin(), experiment_ids.end());

    KILN_ASSIGN_OR_RETURN(std::vector<filter::Clause> clauses, filter::ParseFilter(spec_.filter));
    bool has_metric_clause = false;
    for (const filter::Clause& clause : clauses) {
      KILN_RETURN_IF_ERROR(AddClause(clause, &has_metric_clause));
    }
    // Datasets without a metric clause: models with any metric on one of those datasets.
    if (!spec_.datasets.empty() && !has_metric_clause) {
      sql_ += " AND EXISTS (SELECT 1 FROM logged_model_metrics x WHERE x.model_id = m.model_id";
      AppendDatasetCondition("x");
      sql_ += ")";
    }

    sql_ += " ORDER BY ";
    for (const LoggedModelOrderBy& order : spec_.order_by) {
      KILN_RETURN_IF_ERROR(AddOrderBy(order));
    }
    sql_ += "m.creation_timestamp_ms DESC, m.model_id ASC LIMIT ? OFFSET ?";
    params_.push_back(spec_.max_results + 1);
    params_.push_back(spec_.offset);
    return SqlStatement{std::move(sql_), std::move(params_)};
  }

 private:
  // " AND ((x.dataset_name = ? AND x.dataset_digest = ?) OR (x.dataset_name = ?) ...)"
  void AppendDatasetCondition(std::string_view alias) {
    if (spec_.datasets.empty()) return;
    std::string a(alias);
    sql_ += " AND (";
    for (size_t i = 0; i < spec_.datasets.size(); ++i) {
      const LoggedModelDatasetFilter& dataset = spec_.datasets[i];
      if (i > 0) sql_ += " OR ";
      sql_ += "(" + a + ".dataset_name = ?";
      params_.push_back(dataset.dataset_name);
      if (!dataset.dataset_digest.empty()) {
        sql_ += " AND " + a + ".dataset_digest = ?";
        params_.push_back(dataset.dataset_digest);
      }
      sql_ += ")";
    }
    sql_ += ")";
  }

  // `column op value` for string comparators; `value` already checked against the comparator.
  Status AppendStringComparison(const std::string& column, const filter::Clause& clause,
                                bool is_status) {
    const std::string& op = clause.comparator;
    auto normalise = [&](const std::string& text) -> Result<std::string> {
      if (!is_status) return text;
      KILN_ASSIGN_OR_RETURN(LoggedModelStatus status, ParseLoggedModelStatus(text));
      return std::string(LoggedModelStatusName(status));
    };
    if (op == "IN" || op == "NOT IN") {
      if (clause.value.kind != filter::Value::Kind::kList) {
        return InvalidArgument("Invalid filter: " + clause.identifier.text + " " + op +
                               " expects a list of strings like ('a', 'b'), got " +
                               clause.value.text);
      }
      sql_ += " AND " + column + (op == "IN" ? " IN (" : " NOT IN (") +
              Placeholders(clause.value.list.size()) + ")";
      for (const std::string& item : clause.value.list) {
        KILN_ASSIGN_OR_RETURN(std::string value, normalise(item));
        params_.push_back(std::move(value));
      }
      return Status::Ok();
    }
    std::string text;
    if (clause.value.kind == filter::Value::Kind::kString) {
      text = clause.value.string;
    } else if (clause.value.kind == filter::Value::Kind::kNumber) {
      text = clause.value.text;
    } else {
      return InvalidArgument("Invalid filter: " + clause.identifier.text + " " + op +
                             " expects a quoted string, got " + clause.value.text);
    }
    if (op == "LIKE") {
      sql_ += " AND " + dialect_.Like(column, "?");
      params_.push_back(std::move(text));
    } else if (op == "ILIKE") {
      sql_ += " AND " + dialect_.ILike(column, "?");
      params_.push_back(std::move(text));
    } else {
      KILN_ASSIGN_OR_RETURN(std::string value, normalise(text));
      sql_ += " AND " + column + (op == "=" ? " = ?" : " != ?");
      params_.push_back(std::move(value));
    }
    return Status::Ok();
  }

  Status AddClause(const filter::Clause& clause, bool* has_metric_clause) {
    const std::string& op = clause.comparator;
    const std::optional<std::string>& entity = clause.identifier.entity;
    const std::string& key = clause.identifier.key;

    if (!entity.has_value() || *entity == "attributes" || *entity == "attribute" ||
        *entity == "attr") {
      std::optional<AttributeColumn> attribute = FindAttribute(key);
      if (!attribute.has_value()) {
        return InvalidArgument(
            "Invalid attribute " + Quote(key) + " in filter. Logged model search supports "
            "name, model_id, model_type, source_run_id, status, creation_timestamp, "
            "last_updated_timestamp, metrics.<key>, params.<key> and tags.<key>");
      }
      std::string column = "m." + std::string(attribute->column);
      if (attribute->kind == ColumnKind::kTimestamp ||
          attribute->kind == ColumnKind::kExperimentId) {
        if (!IsNumericComparator(op)) {
          return InvalidArgument("Invalid comparison operator for attributes." + key + ": " +
                                 Quote(op) + ". Expected one of " +
                                 std::string(kNumericComparators) + ".");
        }
        std::optional<int64_t> integer = clause.value.integer;
        if (clause.value.kind == filter::Value::Kind::kString) {
          int64_t parsed = 0;
          const std::string& s = clause.value.string;
          auto [end, error] = std::from_chars(s.data(), s.data() + s.size(), parsed);
          if (!s.empty() && error == std::errc() && end == s.data() + s.size()) integer = parsed;
        }
        if (!integer.has_value()) {
          return InvalidArgument("Invalid filter: " + clause.identifier.text +
                                 " expects an integer, got " + clause.value.text);
        }
        sql_ += " AND " + column + " " + op + " ?";
        params_.push_back(*integer);
        return Status::Ok();
      }
      if (!IsStringComparator(op)) {
        return InvalidArgument("Invalid comparison operator for attributes." + key + ": " +
                               Quote(op) + ". Expected one of " +
                               std::string(kStringComparators) + ".");
      }
      return AppendStringComparison(column, clause, attribute->kind == ColumnKind::kStatus);
    }

    if (*entity == "metrics" || *entity == "metric") {
      *has_metric_clause = true;
      if (!IsNumericComparator(op)) {
        return InvalidArgument("Invalid comparison operator for metrics." + key + ": " +
                               Quote(op) + ". Expected one of " +
                               std::string(kNumericComparators) + ".");
      }
      if (clause.value.kind != filter::Value::Kind::kNumber) {
        return InvalidArgument("Invalid filter: metrics." + key + " expects a number, got " +
                               clause.value.text);
      }
      sql_ += " AND EXISTS (SELECT 1 FROM logged_model_metrics x WHERE x.model_id = m.model_id "
              "AND x.metric_name = ? AND x.is_nan = 0 AND x.metric_value " + op + " ?";
      params_.push_back(key);
      params_.push_back(clause.value.number);
      AppendDatasetCondition("x");
      sql_ += ")";
      return Status::Ok();
    }

    std::string table, key_column, value_column, kind;
    if (*entity == "params" || *entity == "param") {
      table = "logged_model_params";
      key_column = "param_key";
      value_column = "param_value";
      kind = "params";
    } else if (*entity == "tags" || *entity == "tag") {
      table = "logged_model_tags";
      key_column = "tag_key";
      value_column = "tag_value";
      kind = "tags";
    } else {
      return InvalidArgument("Invalid entity type " + Quote(*entity) +
                             " in filter. Expected one of ['attributes', 'metrics', 'params', "
                             "'tags'].");
    }
    if (!IsStringComparator(op)) {
      return InvalidArgument("Invalid comparison operator for " + kind + "." + key + ": " +
                             Quote(op) + ". Expected one of " + std::string(kStringComparators) +
                             ".");
    }
    sql_ += " AND EXISTS (SELECT 1 FROM " + table + " x WHERE x.model_id = m.model_id AND x." +
            key_column + " = ?";
    params_.push_back(key);
    KILN_RETURN_IF_ERROR(AppendStringComparison("x." + value_column, clause, false));
    sql_ += ")";
    return Status::Ok();
  }

  Status AddOrderBy(const LoggedModelOrderBy& order) {
    const std::string direction = order.ascending ? " ASC" : " DESC";
    const std::string& field = order.field_name;
    if (field.empty()) return InvalidArgument("order_by: field_name must be given");
    size_t dot = field.find('.');
    if (dot == std::string::npos) {
      std::optional<AttributeColumn> attribute = FindAttribute(field);
      if (!attribute.has_value()) {
        return InvalidArgument("Invalid order by field name: " + field);
      }
      if (!order.dataset_name.empty() || !order.dataset_digest.empty()) {
        return InvalidArgument("order_by " + Quote(field) +
                               ": dataset_name and dataset_digest apply to metrics only");
      }
      std::string column = "m." + std::string(attribute->column);
      // Nulls last in both directions, as MLflow.
      sql_ += "CASE WHEN " + column + " IS NULL THEN 1 ELSE 0 END, " + column + direction + ", ";
      return Status::Ok();
    }
    std::string_view entity = std::string_view(field).substr(0, dot);
    std::string key = field.substr(dot + 1);
    if (entity != "metrics") {
      return InvalidArgument("Invalid order by field name: " + field +
                             ". Only metrics are supported.");
    }
    if (!order.dataset_digest.empty() && order.dataset_name.empty()) {
      return InvalidArgument("order_by " + Quote(field) +
                             ": dataset_digest may only be set with dataset_name");
    }
    // The model's latest point of the metric (by timestamp, then step); NaN and missing last.
    std::string latest =
        "(SELECT CASE WHEN x.is_nan = 1 THEN NULL ELSE x.metric_value END FROM "
        "logged_model_metrics x WHERE x.model_id = m.model_id AND x.metric_name = ?";
    params_.push_back(key);
    if (!order.dataset_name.empty()) {
      latest += " AND x.dataset_name = ?";
      params_.push_back(order.dataset_name);
    }
    if (!order.dataset_digest.empty()) {
      latest += " AND x.dataset_digest = ?";
      params_.push_back(order.dataset_digest);
    }
    latest += " ORDER BY x.metric_timestamp_ms DESC, x.metric_step DESC LIMIT 1)";
    sql_ += latest + direction + " NULLS LAST, ";
    return Status::Ok();
  }

  const LoggedModelSearchSpec& spec_;
  const store::Dialect& dialect_;
  std::string sql_;
  std::vector<Value> params_;
};

}  // namespace

std::string_view LoggedModelStatusName(LoggedModelStatus status) {
  switch (status) {
    case LoggedModelStatus::kPending:
      return "LOGGED_MODEL_PENDING";
    case LoggedModelStatus::kReady:
      return "LOGGED_MODEL_READY";
    case LoggedModelStatus::kUploadFailed:
      return "LOGGED_MODEL_UPLOAD_FAILED";
  }
  assert(false && "unknown LoggedModelStatus");
  return "";
}

Result<LoggedModelStatus> ParseLoggedModelStatus(std::string_view text) {
  std::string upper;
  for (char c : text) {
    upper.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  std::string_view name = upper;
  if (name.starts_with("LOGGED_MODEL_")) name.remove_prefix(13);
  if (name == "PENDING" || name == "1") return LoggedModelStatus::kPending;
  if (name == "READY" || name == "2") return LoggedModelStatus::kReady;
  if (name == "UPLOAD_FAILED" || name == "3") return LoggedModelStatus::kUploadFailed;
  return InvalidArgument("Invalid logged model status " + Quote(text) +
                         ". Expected one of LOGGED_MODEL_PENDING, LOGGED_MODEL_READY, "
                         "LOGGED_MODEL_UPLOAD_FAILED.");
}

Result<LoggedModel> LoggedModelStore::Create(const CreateLoggedModelRequest& request) {
  if (request.experiment_id.empty()) {
    return InvalidArgument("Missing value for required parameter 'experiment_id'.");
  }
  KILN_ASSIGN_OR_RETURN(int64_t experiment_id,
                        ParseExperimentId(request.experiment_id, /*for_search=*/false));
  std::string name = request.name.empty() ? validation::GenerateRunName() : request.name;
  KILN_RETURN_IF_ERROR(ValidateModelName(name));
  KILN_RETURN_IF_ERROR(
      validation::ValidateLength("Model type", request.model_type, kMaxModelTypeLength));
  KILN_RETURN_IF_ERROR(ValidateTags(request.tags));
  KILN_ASSIGN_OR_RETURN(std::vector<Tag> params, UniqueParams(request.params));
  std::vector<Tag> tags = LastValuePerKey(request.tags);

  // Made outside the transaction: its body may run more than once.
  const std::string model_id = "m-" + NewId();
  const int64_t now = clock_->NowMillis();

  KILN_RETURN_IF_ERROR(database_->Write([&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(Rows experiment,
                          tx.Query("SELECT artifact_location, lifecycle_stage FROM experiments "
                                   "WHERE experiment_id = ?",
                                   {experiment_id}));
    if (experiment.empty()) {
      return NotFound("No Experiment with id=" + request.experiment_id + " exists");
    }
    if (experiment.Text(0, 1) != kActive) {
      return InvalidArgument("The experiment " + request.experiment_id +
                             " must be in the 'active' state. Current state is " +
                             experiment.Text(0, 1) + ".");
    }
    std::string artifact_location =
        AppendUriPath(experiment.Text(0, 0), "models/" + model_id + "/artifacts");
    KILN_RETURN_IF_ERROR(
        tx.Exec("INSERT INTO logged_models (model_id, experiment_id, name, artifact_location, "
                "creation_timestamp_ms, last_updated_timestamp_ms, status, lifecycle_stage, "
                "model_type, source_run_id, status_message) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                {model_id, experiment_id, name, artifact_location, now, now,
                 std::string(LoggedModelStatusName(LoggedModelStatus::kPending)),
                 std::string(kActive), OptionalText(request.model_type),
                 OptionalText(request.source_run_id), store::Null()})
            .status());
    KILN_RETURN_IF_ERROR(InsertParams(tx, model_id, params));
    return UpsertTags(tx, model_id, tags);
  }));
  return Get(model_id);
}

Result<LoggedModel> LoggedModelStore::Get(const std::string& model_id) {
  std::vector<LoggedModel> models;
  KILN_RETURN_IF_ERROR(database_->Read([&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(models, LoadModels(tx, {model_id}));
    return Status::Ok();
  }));
  if (models.empty() || models.front().lifecycle_stage == kDeleted) {
    return ModelNotFound(model_id);
  }
  return std::move(models.front());
}

Result<LoggedModel> LoggedModelStore::Finalize(const std::string& model_id,
                                               LoggedModelStatus status) {
  const int64_t now = clock_->NowMillis();
  std::vector<LoggedModel> models;
  KILN_RETURN_IF_ERROR(database_->Write([&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(
        int64_t changed,
        tx.Exec("UPDATE logged_models SET status = ?, last_updated_timestamp_ms = ? "
                "WHERE model_id = ?",
                {std::string(LoggedModelStatusName(status)), now, model_id}));
    if (changed == 0) return ModelNotFound(model_id);
    KILN_ASSIGN_OR_RETURN(models, LoadModels(tx, {model_id}));
    return Status::Ok();
  }));
  if (models.empty()) return ModelNotFound(model_id);
  return std::move(models.front());
}

Status LoggedModelStore::Delete(const std::string& model_id) {
  const int64_t now = clock_->NowMillis();
  return database_->Write([&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(
        int64_t changed,
        tx.Exec("UPDATE logged_models SET lifecycle_stage = ?, last_updated_timestamp_ms = ? "
                "WHERE model_id = ?",
                {std::string(kDeleted), now, model_id}));
    if (changed == 0) return ModelNotFound(model_id);
    return Status::Ok();
  });
}

Status LoggedModelStore::SetTags(const std::string& model_id, const std::vector<Tag>& tags) {
  KILN_RETURN_IF_ERROR(ValidateTags(tags));
  std::vector<Tag> unique = LastValuePerKey(tags);
  const int64_t now = clock_->NowMillis();
  return database_->Write([&](Transaction& tx) -> Status {
    KILN_RETURN_IF_ERROR(RequireModel(tx, model_id));
    KILN_RETURN_IF_ERROR(UpsertTags(tx, model_id, unique));
    return Touch(tx, model_id, now);
  }, kLoggingDurability);
}

Status LoggedModelStore::DeleteTag(const std::string& model_id, const std::string& key) {
  const int64_t now = clock_->NowMillis();
  return database_->Write([&](Transaction& tx) -> Status {
    KILN_RETURN_IF_ERROR(RequireModel(tx, model_id));
    KILN_ASSIGN_OR_RETURN(
        int64_t deleted,
        tx.Exec("DELETE FROM logged_model_tags WHERE model_id = ? AND tag_key = ?",
                {model_id, key}));
    if (deleted == 0) {
      return NotFound("No tag with key " + Quote(key) + " found for model with ID " +
                      Quote(model_id) + ".");
    }
    return Touch(tx, model_id, now);
  }, kLoggingDurability);
}

Status LoggedModelStore::LogParams(const std::string& model_id, const std::vector<Tag>& params) {
  KILN_ASSIGN_OR_RETURN(std::vector<Tag> unique, UniqueParams(params));
  const int64_t now = clock_->NowMillis();
  return database_->Write([&](Transaction& tx) -> Status {
    KILN_RETURN_IF_ERROR(RequireModel(tx, model_id));
    KILN_RETURN_IF_ERROR(InsertParams(tx, model_id, unique));
    return Touch(tx, model_id, now);
  }, kLoggingDurability);
}

Status WriteLoggedModelMetrics(Transaction& tx, const std::string& model_id,
                               const std::vector<LoggedModelMetric>& metrics) {
  KILN_RETURN_IF_ERROR(RequireModel(tx, model_id));
  if (metrics.empty()) return Status::Ok();
  std::vector<std::vector<Value>> rows;
  rows.reserve(metrics.size());
  for (const LoggedModelMetric& metric : metrics) {
    bool nan = std::isnan(metric.value);
    rows.push_back({model_id, metric.key, metric.timestamp, metric.step,
                    nan ? 0.0 : metric.value, int64_t{nan ? 1 : 0}, metric.run_id,
                    OptionalText(metric.dataset_name), OptionalText(metric.dataset_digest)});
  }
  return tx
      .ExecMany("INSERT INTO logged_model_metrics (model_id, metric_name, metric_timestamp_ms, "
                "metric_step, metric_value, is_nan, run_id, dataset_name, dataset_digest) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (model_id, metric_name, "
                "metric_timestamp_ms, metric_step, run_id) DO NOTHING",
                rows)
      .status();
}

Status LoggedModelStore::LogMetrics(const std::string& model_id,
                                    const std::vector<LoggedModelMetric>& metrics) {
  for (const LoggedModelMetric& metric : metrics) {
    KILN_RETURN_IF_ERROR(validation::ValidateEntityName("metric", metric.key));
  }
  return database_->Write([&](Transaction& tx) -> Status {
    return WriteLoggedModelMetrics(tx, model_id, metrics);
  }, kLoggingDurability);
}

Result<Page<LoggedModel>> LoggedModelStore::Search(const LoggedModelSearchSpec& spec) {
  Page<LoggedModel> page;
  if (spec.experiment_ids.empty()) return page;
  SearchSqlBuilder builder(spec, database_->dialect());
  KILN_ASSIGN_OR_RETURN(SqlStatement statement, builder.Build());
  KILN_RETURN_IF_ERROR(database_->Read([&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(Rows rows, tx.Query(statement.sql, statement.params));
    std::vector<std::string> ids;
    for (size_t i = 0; i < rows.size() && static_cast<int64_t>(i) < spec.max_results; ++i) {
      ids.push_back(rows.Text(i, 0));
    }
    if (static_cast<int64_t>(rows.size()) > spec.max_results) {
      page.next_page_token = EncodePageToken(spec.offset + spec.max_results);
    }
    KILN_ASSIGN_OR_RETURN(page.items, LoadModels(tx, ids));
    return Status::Ok();
  }));
  return page;
}

}  // namespace kiln::tracking
