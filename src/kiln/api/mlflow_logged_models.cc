#include "kiln/api/mlflow_logged_models.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "kiln/api/artifact_files.h"
#include "kiln/api/errors.h"
#include "kiln/api/mlflow_routes.h"
#include "kiln/api/request.h"
#include "kiln/core/json.h"
#include "kiln/http/message.h"
#include "kiln/tracking/logged_model_store.h"
#include "kiln/tracking/search.h"

namespace kiln::api {
namespace {


constexpr std::string_view kPrefixes[] = {
    "/api/2.0/mlflow/logged-models/",
    "/ajax-api/2.0/mlflow/logged-models/",
};

// --- Replies -----------------------------------------------------------------------------------

Json TagsJson(const std::vector<tracking::Tag>& tags) {
  Json out = Json::array();
  for (const tracking::Tag& tag : tags) out.push_back({{"key", tag.key}, {"value", tag.value}});
  return out;
}

void SetIfNotEmpty(Json& object, const char* field, const std::string& value) {
  if (!value.empty()) object[field] = value;
}

Json ModelJson(const tracking::LoggedModel& model) {
  Json info = {
      {"model_id", model.model_id},
      {"experiment_id", model.experiment_id},
      {"name", model.name},
      {"creation_timestamp_ms", model.creation_timestamp_ms},
      {"last_updated_timestamp_ms", model.last_updated_timestamp_ms},
      {"artifact_uri", model.artifact_location},
      {"status", std::string(tracking::LoggedModelStatusName(model.status))},
  };
  SetIfNotEmpty(info, "model_type", model.model_type);
  SetIfNotEmpty(info, "source_run_id", model.source_run_id);
  SetIfNotEmpty(info, "status_message", model.status_message);
  if (!model.tags.empty()) info["tags"] = TagsJson(model.tags);

  Json data = Json::object();
  if (!model.params.empty()) data["params"] = TagsJson(model.params);
  if (!model.metrics.empty()) {
    Json metrics = Json::array();
    for (const tracking::LoggedModelMetric& metric : model.metrics) {
      Json point = {{"key", metric.key},
                    {"value", DoubleToJson(metric.value)},
                    {"timestamp", metric.timestamp},
                    {"step", metric.step},
                    {"model_id", model.model_id}};
      SetIfNotEmpty(point, "run_id", metric.run_id);
      SetIfNotEmpty(point, "dataset_name", metric.dataset_name);
      SetIfNotEmpty(point, "dataset_digest", metric.dataset_digest);
      metrics.push_back(std::move(point));
    }
    data["metrics"] = std::move(metrics);
  }
  return {{"info", std::move(info)}, {"data", std::move(data)}};
}

// --- Request fields ----------------------------------------------------------------------------

Result<std::string> OptionalString(const Json& request, std::string_view field) {
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> value, GetString(request, field));
  return value.value_or("");
}

// A repeated {key, value} field (LoggedModelTag, LoggedModelParameter); absent is empty.
Result<std::vector<tracking::Tag>> KeyValues(const Json& request, std::string_view field) {
  std::vector<tracking::Tag> out;
  auto it = request.find(field);
  if (it == request.end() || it->is_null()) return out;
  if (!it->is_array()) {
    return InvalidArgument("Invalid value for parameter '" + std::string(field) +
                           "': expected an array of {\"key\": ..., \"value\": ...} objects");
  }
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& item = (*it)[i];
    std::string where = std::string(field) + "[" + std::to_string(i) + "]";
    if (!item.is_object()) {
      return InvalidArgument("Invalid value for parameter '" + where + "': expected an object");
    }
    auto key = GetString(item, "key");
    if (!key.ok()) return key.status().WithContext(where);
    auto value = GetString(item, "value");
    if (!value.ok()) return value.status().WithContext(where);
    out.push_back({key->value_or(""), value->value_or("")});
  }
  return out;
}

// FinalizeLoggedModel.status: the enum's name (as MLflow's clients send it) or its number.
Result<tracking::LoggedModelStatus> StatusField(const Json& request) {
  auto it = request.find("status");
  if (it == request.end() || it->is_null() || (it->is_string() && it->get<std::string>().empty())) {
    return InvalidArgument(
        "Missing value for required parameter 'status'. See the API docs for more information "
        "about request parameters.");
  }
  if (it->is_number_integer()) {
    return tracking::ParseLoggedModelStatus(std::to_string(it->get<int64_t>()));
  }
  if (it->is_string()) return tracking::ParseLoggedModelStatus(it->get<std::string>());
  return InvalidArgument("Invalid value " + it->dump() + " for parameter 'status'");
}

Result<tracking::LoggedModelSearchSpec> SearchSpecFrom(const Json& request) {
  tracking::LoggedModelSearchSpec spec;
  if (!request.contains("experiment_ids")) {
    return InvalidArgument(
        "Missing value for required parameter 'experiment_ids'. See the API docs for more "
        "information about request parameters.");
  }
  KILN_ASSIGN_OR_RETURN(spec.experiment_ids, GetStringList(request, "experiment_ids"));
  KILN_ASSIGN_OR_RETURN(spec.filter, OptionalString(request, "filter"));
  KILN_ASSIGN_OR_RETURN(std::optional<int64_t> max_results, GetInt64(request, "max_results"));
  // 0 or absent means the default, as on MLflow (`max_results or None`).
  spec.max_results = max_results.value_or(0) == 0 ? tracking::kDefaultLoggedModelSearchResults
                                                  : *max_results;
  KILN_ASSIGN_OR_RETURN(std::string page_token, OptionalString(request, "page_token"));
  if (!page_token.empty()) {
    KILN_ASSIGN_OR_RETURN(spec.offset, tracking::DecodePageToken(page_token));
  }

  if (auto datasets = request.find("datasets"); datasets != request.end() && !datasets->is_null()) {
    if (!datasets->is_array()) return InvalidArgument("Invalid value for parameter 'datasets'");
    for (const Json& item : *datasets) {
      if (!item.is_object()) return InvalidArgument("Invalid value for parameter 'datasets'");
      tracking::LoggedModelDatasetFilter dataset;
      KILN_ASSIGN_OR_RETURN(dataset.dataset_name, OptionalString(item, "dataset_name"));
      KILN_ASSIGN_OR_RETURN(dataset.dataset_digest, OptionalString(item, "dataset_digest"));
      spec.datasets.push_back(std::move(dataset));
    }
  }
  if (auto order_by = request.find("order_by"); order_by != request.end() && !order_by->is_null()) {
    if (!order_by->is_array()) return InvalidArgument("Invalid value for parameter 'order_by'");
    for (const Json& item : *order_by) {
      if (!item.is_object()) {
        return InvalidArgument(
            "Invalid value for parameter 'order_by': expected objects like "
            "{\"field_name\": \"metrics.accuracy\", \"ascending\": false}");
      }
      tracking::LoggedModelOrderBy order;
      KILN_ASSIGN_OR_RETURN(order.field_name, OptionalString(item, "field_name"));
      KILN_ASSIGN_OR_RETURN(std::optional<bool> ascending, GetBool(item, "ascending"));
      order.ascending = ascending.value_or(true);
      KILN_ASSIGN_OR_RETURN(order.dataset_name, OptionalString(item, "dataset_name"));
      KILN_ASSIGN_OR_RETURN(order.dataset_digest, OptionalString(item, "dataset_digest"));
      spec.order_by.push_back(std::move(order));
    }
  }
  return spec;
}

// --- Routing -----------------------------------------------------------------------------------

void WriteEndpointNotFound(const http::Request& request, int status, http::Response& response) {
  response.status = status;
  response.content_type = "application/json";
  Json body = {{"error_code", "ENDPOINT_NOT_FOUND"},
               {"message", "No endpoint " + request.method + " " + request.path}};
  response.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
}

class LoggedModelHandlers {
 public:
  LoggedModelHandlers(tracking::LoggedModelStore* store, std::string artifact_root)
      : store_(store), artifact_root_(std::move(artifact_root)) {}

  Result<Json> Create(const Json& request) const {
    tracking::CreateLoggedModelRequest create;
    KILN_ASSIGN_OR_RETURN(create.experiment_id, RequireString(request, "experiment_id"));
    KILN_ASSIGN_OR_RETURN(create.name, OptionalString(request, "name"));
    KILN_ASSIGN_OR_RETURN(create.model_type, OptionalString(request, "model_type"));
    KILN_ASSIGN_OR_RETURN(create.source_run_id, OptionalString(request, "source_run_id"));
    KILN_ASSIGN_OR_RETURN(create.params, KeyValues(request, "params"));
    KILN_ASSIGN_OR_RETURN(create.tags, KeyValues(request, "tags"));
    KILN_ASSIGN_OR_RETURN(tracking::LoggedModel model, store_->Create(create));
    return Json{{"model", ModelJson(model)}};
  }

  Result<Json> Search(const Json& request) const {
    KILN_ASSIGN_OR_RETURN(tracking::LoggedModelSearchSpec spec, SearchSpecFrom(request));
    KILN_ASSIGN_OR_RETURN(tracking::Page<tracking::LoggedModel> page, store_->Search(spec));
    Json reply = Json::object();
    if (!page.items.empty()) {
      Json models = Json::array();
      for (const tracking::LoggedModel& model : page.items) models.push_back(ModelJson(model));
      reply["models"] = std::move(models);
    }
    if (!page.next_page_token.empty()) reply["next_page_token"] = page.next_page_token;
    return reply;
  }

  // Everything below /logged-models/: <id>, <id>/tags, <id>/tags/<key>, <id>/params,
  // <id>/artifacts/directories.
  void Dispatch(std::string_view prefix, const http::Request& request,
                http::Response& response) const {
    std::string_view rest = std::string_view(request.path).substr(prefix.size());
    size_t slash = rest.find('/');
    std::string model_id(rest.substr(0, slash));
    std::string_view tail = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
    const std::string& method = request.method;
    if (model_id.empty()) return WriteEndpointNotFound(request, 404, response);

    JsonRpc rpc;
    if (slash == std::string_view::npos) {
      if (method == "GET") {
        rpc = [&](const Json&) -> Result<Json> {
          KILN_ASSIGN_OR_RETURN(tracking::LoggedModel model, store_->Get(model_id));
          return Json{{"model", ModelJson(model)}};
        };
      } else if (method == "PATCH") {
        rpc = [&](const Json& body) -> Result<Json> {
          KILN_ASSIGN_OR_RETURN(tracking::LoggedModelStatus status, StatusField(body));
          KILN_ASSIGN_OR_RETURN(tracking::LoggedModel model, store_->Finalize(model_id, status));
          return Json{{"model", ModelJson(model)}};
        };
      } else if (method == "DELETE") {
        rpc = [&](const Json&) -> Result<Json> {
          KILN_RETURN_IF_ERROR(store_->Delete(model_id));
          return Json::object();
        };
      }
    } else if (tail == "tags") {
      if (method == "PATCH") {
        rpc = [&](const Json& body) -> Result<Json> {
          KILN_ASSIGN_OR_RETURN(std::vector<tracking::Tag> tags, KeyValues(body, "tags"));
          KILN_RETURN_IF_ERROR(store_->SetTags(model_id, tags));
          return Json::object();
        };
      }
    } else if (tail.size() > 5 && tail.substr(0, 5) == "tags/") {
      std::string key(tail.substr(5));  // a key may itself contain '/'
      if (method == "DELETE") {
        rpc = [&, key](const Json&) -> Result<Json> {
          KILN_RETURN_IF_ERROR(store_->DeleteTag(model_id, key));
          return Json::object();
        };
      }
    } else if (tail == "params") {
      if (method == "POST") {
        rpc = [&](const Json& body) -> Result<Json> {
          KILN_ASSIGN_OR_RETURN(std::vector<tracking::Tag> params, KeyValues(body, "params"));
          KILN_RETURN_IF_ERROR(store_->LogParams(model_id, params));
          return Json::object();
        };
      }
    } else if (tail == "artifacts/directories") {
      if (method == "GET") {
        rpc = [&](const Json& query) -> Result<Json> {
          KILN_ASSIGN_OR_RETURN(std::string directory,
                                OptionalString(query, "artifact_directory_path"));
          KILN_ASSIGN_OR_RETURN(tracking::LoggedModel model, store_->Get(model_id));
          return ListArtifactFolder(model.artifact_location, artifact_root_, directory);
        };
      }
    } else {
      return WriteEndpointNotFound(request, 404, response);
    }
    if (!rpc) return WriteEndpointNotFound(request, 405, response);
    JsonHandler(std::move(rpc))(request, response);
  }

 private:
  tracking::LoggedModelStore* store_;
  std::string artifact_root_;
};

}  // namespace

void RegisterLoggedModelRoutes(http::Router& router, tracking::LoggedModelStore& store,
                               const std::string& artifact_root) {
  auto handlers = std::make_shared<LoggedModelHandlers>(&store, artifact_root);
  AddMlflowRoute(router, "POST", "/logged-models", JsonHandler([handlers](const Json& request) {
                   return handlers->Create(request);
                 }));
  AddMlflowRoute(router, "POST", "/logged-models/search",
                 JsonHandler([handlers](const Json& body) { return handlers->Search(body); }));
  for (std::string_view prefix : kPrefixes) {
    for (const char* method : {"GET", "PATCH", "DELETE", "POST"}) {
      router.AddPrefix(method, std::string(prefix),
                       [handlers, prefix](const http::Request& request, http::Response& response) {
                         handlers->Dispatch(prefix, request, response);
                       });
    }
  }
}

}  // namespace kiln::api
