// MLflow's model registry RPCs (model_registry.proto) over registry::RegistryStore.
//
// Wire shapes, as MLflow 2.x answers (proto2 messages through MessageToJson, int64 as numbers):
//   RegisteredModel = {name, creation_timestamp, last_updated_timestamp, user_id?, description?,
//                      latest_versions?: [ModelVersion], tags?: [{key, value}],
//                      aliases?: [{alias, version: "N"}]}
//   ModelVersion    = {name, version: "N", creation_timestamp, last_updated_timestamp, user_id?,
//                      current_stage, description?, source?, run_id?, status, status_message?,
//                      tags?: [{key, value}], run_link?, aliases?: ["alias", ...]}
// A field marked ? is left out when it was never set (NULL in the database); a string set to ""
// is sent, as MLflow's REST handlers store "" for an unset description, run_id or run_link. Empty
// lists are left out; an empty search is {}.
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "kiln/api/artifact_files.h"
#include "kiln/api/artifacts.h"
#include "kiln/api/errors.h"
#include "kiln/api/mlflow_routes.h"
#include "kiln/api/request.h"
#include "kiln/registry/registry_store.h"

namespace kiln::api {
namespace {

using registry::ModelVersion;
using registry::RegisteredModel;
using registry::RegistryStore;
using registry::Tag;

Json TagsJson(const std::vector<Tag>& tags) {
  Json array = Json::array();
  for (const Tag& tag : tags) array.push_back({{"key", tag.key}, {"value", tag.value}});
  return array;
}

void SetIfPresent(Json& object, const char* field, const std::optional<std::string>& value) {
  if (value.has_value()) object[field] = *value;
}

Json ModelVersionJson(const ModelVersion& version) {
  Json object = {{"name", version.name},
                 {"version", std::to_string(version.version)},
                 {"creation_timestamp", version.creation_timestamp},
                 {"last_updated_timestamp", version.last_updated_timestamp},
                 {"current_stage", version.current_stage},
                 {"status", version.status}};
  SetIfPresent(object, "user_id", version.user_id);
  SetIfPresent(object, "description", version.description);
  SetIfPresent(object, "source", version.source);
  SetIfPresent(object, "run_id", version.run_id);
  SetIfPresent(object, "status_message", version.status_message);
  SetIfPresent(object, "run_link", version.run_link);
  if (!version.tags.empty()) object["tags"] = TagsJson(version.tags);
  if (!version.aliases.empty()) object["aliases"] = version.aliases;
  return object;
}

Json RegisteredModelJson(const RegisteredModel& model) {
  Json object = {{"name", model.name},
                 {"creation_timestamp", model.creation_timestamp},
                 {"last_updated_timestamp", model.last_updated_timestamp}};
  SetIfPresent(object, "user_id", model.user_id);
  SetIfPresent(object, "description", model.description);
  if (!model.latest_versions.empty()) {
    Json versions = Json::array();
    for (const ModelVersion& version : model.latest_versions) {
      versions.push_back(ModelVersionJson(version));
    }
    object["latest_versions"] = std::move(versions);
  }
  if (!model.tags.empty()) object["tags"] = TagsJson(model.tags);
  if (!model.aliases.empty()) {
    Json aliases = Json::array();
    for (const registry::ModelAlias& alias : model.aliases) {
      aliases.push_back({{"alias", alias.alias}, {"version", std::to_string(alias.version)}});
    }
    object["aliases"] = std::move(aliases);
  }
  return object;
}

Status MissingParameter(std::string_view field) {
  return InvalidArgument("Missing value for required parameter '" + std::string(field) +
                         "'. See the API docs for more information about request parameters.");
}

// `version` is a string in model_registry.proto ("1"); numbers are accepted too.
Result<int64_t> RequireVersion(const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string text, RequireString(request, "version"));
  size_t start = (text[0] == '+' || text[0] == '-') ? 1 : 0;
  bool digits = start < text.size() && text.size() - start <= 18;
  for (size_t i = start; digits && i < text.size(); ++i) digits = text[i] >= '0' && text[i] <= '9';
  if (!digits) return InvalidArgument("Model version must be an integer, got '" + text + "'");
  return static_cast<int64_t>(std::strtoll(text.c_str(), nullptr, 10));
}

// A value that must be present but may be empty (tag values).
Result<std::string> RequirePresentString(const Json& request, std::string_view field) {
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> value, GetString(request, field));
  if (!value.has_value()) return MissingParameter(field);
  return std::move(*value);
}

// tags: [{key, value}, ...]
Result<std::vector<Tag>> ParseTags(const Json& request) {
  std::vector<Tag> tags;
  auto it = request.find("tags");
  if (it == request.end() || it->is_null()) return tags;
  if (!it->is_array()) {
    return InvalidArgument("Invalid value " + it->dump() +
                           " for parameter 'tags': expected a list of {key, value} objects");
  }
  for (const Json& item : *it) {
    if (!item.is_object()) {
      return InvalidArgument("Invalid value " + item.dump() +
                             " in parameter 'tags': expected a {key, value} object");
    }
    KILN_ASSIGN_OR_RETURN(std::string key, RequireString(item, "key"));
    KILN_ASSIGN_OR_RETURN(std::optional<std::string> value, GetString(item, "value"));
    tags.push_back({std::move(key), value.value_or("")});
  }
  return tags;
}

Result<registry::SearchRequest> ParseSearch(const Json& request) {
  registry::SearchRequest search;
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> filter, GetString(request, "filter"));
  search.filter = filter.value_or("");
  KILN_ASSIGN_OR_RETURN(search.max_results, GetInt64(request, "max_results"));
  KILN_ASSIGN_OR_RETURN(search.order_by, GetStringList(request, "order_by"));
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> token, GetString(request, "page_token"));
  search.page_token = token.value_or("");
  return search;
}

// --- registered models ---------------------------------------------------------------------

Result<Json> CreateRegisteredModel(RegistryStore& store, const Json& request) {
  registry::CreateRegisteredModelRequest create;
  KILN_ASSIGN_OR_RETURN(create.name, RequireString(request, "name"));
  KILN_ASSIGN_OR_RETURN(create.tags, ParseTags(request));
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> description,
                        GetString(request, "description"));
  create.description = description.value_or("");
  KILN_ASSIGN_OR_RETURN(RegisteredModel model, store.CreateRegisteredModel(create));
  return Json{{"registered_model", RegisteredModelJson(model)}};
}

Result<Json> GetRegisteredModel(RegistryStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string name, RequireString(request, "name"));
  KILN_ASSIGN_OR_RETURN(RegisteredModel model, store.GetRegisteredModel(name));
  return Json{{"registered_model", RegisteredModelJson(model)}};
}

Result<Json> RenameRegisteredModel(RegistryStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string name, RequireString(request, "name"));
  KILN_ASSIGN_OR_RETURN(std::string new_name, RequireString(request, "new_name"));
  KILN_ASSIGN_OR_RETURN(RegisteredModel model, store.RenameRegisteredModel(name, new_name));
  return Json{{"registered_model", RegisteredModelJson(model)}};
}

Result<Json> UpdateRegisteredModel(RegistryStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string name, RequireString(request, "name"));
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> description,
                        GetString(request, "description"));
  KILN_ASSIGN_OR_RETURN(RegisteredModel model,
                        store.UpdateRegisteredModel(name, description.value_or("")));
  return Json{{"registered_model", RegisteredModelJson(model)}};
}

Result<Json> DeleteRegisteredModel(RegistryStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string name, RequireString(request, "name"));
  KILN_RETURN_IF_ERROR(store.DeleteRegisteredModel(name));
  return Json::object();
}

Result<Json> SearchRegisteredModels(RegistryStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(registry::SearchRequest search, ParseSearch(request));
  KILN_ASSIGN_OR_RETURN(registry::Page<RegisteredModel> page,
                        store.SearchRegisteredModels(search));
  Json reply = Json::object();
  if (!page.items.empty()) {
    Json models = Json::array();
    for (const RegisteredModel& model : page.items) models.push_back(RegisteredModelJson(model));
    reply["registered_models"] = std::move(models);
  }
  if (!page.next_page_token.empty()) reply["next_page_token"] = page.next_page_token;
  return reply;
}

Result<Json> GetLatestVersions(RegistryStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string name, RequireString(request, "name"));
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> stages, GetStringList(request, "stages"));
  KILN_ASSIGN_OR_RETURN(std::vector<ModelVersion> versions, store.GetLatestVersions(name, stages));
  Json reply = Json::object();
  if (!versions.empty()) {
    Json array = Json::array();
    for (const ModelVersion& version : versions) array.push_back(ModelVersionJson(version));
    reply["model_versions"] = std::move(array);
  }
  return reply;
}

Result<Json> SetRegisteredModelTag(RegistryStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string name, RequireString(request, "name"));
  KILN_ASSIGN_OR_RETURN(std::string key, RequireString(request, "key"));
  KILN_ASSIGN_OR_RETURN(std::string value, RequirePresentString(request, "value"));
  KILN_RETURN_IF_ERROR(store.SetRegisteredModelTag(name, {std::move(key), std::move(value)}));
  return Json::object();
}

Result<Json> DeleteRegisteredModelTag(RegistryStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string name, RequireString(request, "name"));
  KILN_ASSIGN_OR_RETURN(std::string key, RequireString(request, "key"));
  KILN_RETURN_IF_ERROR(store.DeleteRegisteredModelTag(name, key));
  return Json::object();
}

// --- aliases -------------------------------------------------------------------------------

Result<Json> SetAlias(RegistryStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string name, RequireString(request, "name"));
  KILN_ASSIGN_OR_RETURN(std::string alias, RequireString(request, "alias"));
  KILN_ASSIGN_OR_RETURN(int64_t version, RequireVersion(request));
  KILN_RETURN_IF_ERROR(store.SetRegisteredModelAlias(name, alias, version));
  return Json::object();
}

Result<Json> DeleteAlias(RegistryStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string name, RequireString(request, "name"));
  KILN_ASSIGN_OR_RETURN(std::string alias, RequireString(request, "alias"));
  KILN_RETURN_IF_ERROR(store.DeleteRegisteredModelAlias(name, alias));
  return Json::object();
}

Result<Json> GetModelVersionByAlias(RegistryStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string name, RequireString(request, "name"));
  KILN_ASSIGN_OR_RETURN(std::string alias, RequireString(request, "alias"));
  Result<ModelVersion> version = store.GetModelVersionByAlias(name, alias);
  if (!version.ok()) {
    // MLflow answers an unset alias of an existing model with 400 INVALID_PARAMETER_VALUE
    // "Registered model alias X not found." (and clients match on it); an unknown model or
    // version stays 404.
    const Status& status = version.status();
    if (status.code() == StatusCode::kNotFound &&
        status.message().rfind("Registered model alias ", 0) == 0) {
      return InvalidArgument(status.message());
    }
    return status;
  }
  return Json{{"model_version", ModelVersionJson(*version)}};
}

// --- model versions ------------------------------------------------------------------------

Result<Json> CreateModelVersion(RegistryStore& store, const Json& request) {
  registry::CreateModelVersionRequest create;
  KILN_ASSIGN_OR_RETURN(create.name, RequireString(request, "name"));
  KILN_ASSIGN_OR_RETURN(create.source, RequireString(request, "source"));
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> run_id, GetString(request, "run_id"));
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> run_link, GetString(request, "run_link"));
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> description,
                        GetString(request, "description"));
  KILN_ASSIGN_OR_RETURN(create.tags, ParseTags(request));
  create.run_id = run_id.value_or("");
  create.run_link = run_link.value_or("");
  create.description = description.value_or("");
  KILN_ASSIGN_OR_RETURN(ModelVersion version, store.CreateModelVersion(create));
  return Json{{"model_version", ModelVersionJson(version)}};
}

Result<Json> GetModelVersion(RegistryStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string name, RequireString(request, "name"));
  KILN_ASSIGN_OR_RETURN(int64_t number, RequireVersion(request));
  KILN_ASSIGN_OR_RETURN(ModelVersion version, store.GetModelVersion(name, number));
  return Json{{"model_version", ModelVersionJson(version)}};
}

Result<Json> UpdateModelVersion(RegistryStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string name, RequireString(request, "name"));
  KILN_ASSIGN_OR_RETURN(int64_t number, RequireVersion(request));
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> description,
                        GetString(request, "description"));
  KILN_ASSIGN_OR_RETURN(ModelVersion version,
                        store.UpdateModelVersion(name, number, description));
  return Json{{"model_version", ModelVersionJson(version)}};
}

Result<Json> DeleteModelVersion(RegistryStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string name, RequireString(request, "name"));
  KILN_ASSIGN_OR_RETURN(int64_t number, RequireVersion(request));
  KILN_RETURN_IF_ERROR(store.DeleteModelVersion(name, number));
  return Json::object();
}

Result<Json> TransitionStage(RegistryStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string name, RequireString(request, "name"));
  KILN_ASSIGN_OR_RETURN(int64_t number, RequireVersion(request));
  KILN_ASSIGN_OR_RETURN(std::string stage, RequireString(request, "stage"));
  KILN_ASSIGN_OR_RETURN(std::optional<bool> archive,
                        GetBool(request, "archive_existing_versions"));
  if (!archive.has_value()) return MissingParameter("archive_existing_versions");
  KILN_ASSIGN_OR_RETURN(ModelVersion version,
                        store.TransitionModelVersionStage(name, number, stage, *archive));
  return Json{{"model_version", ModelVersionJson(version)}};
}

Result<Json> SearchModelVersions(RegistryStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(registry::SearchRequest search, ParseSearch(request));
  KILN_ASSIGN_OR_RETURN(registry::Page<ModelVersion> page, store.SearchModelVersions(search));
  Json reply = Json::object();
  if (!page.items.empty()) {
    Json versions = Json::array();
    for (const ModelVersion& version : page.items) versions.push_back(ModelVersionJson(version));
    reply["model_versions"] = std::move(versions);
  }
  if (!page.next_page_token.empty()) reply["next_page_token"] = page.next_page_token;
  return reply;
}

Result<Json> GetDownloadUri(RegistryStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string name, RequireString(request, "name"));
  KILN_ASSIGN_OR_RETURN(int64_t number, RequireVersion(request));
  KILN_ASSIGN_OR_RETURN(std::string uri, store.GetModelVersionDownloadUri(name, number));
  return Json{{"artifact_uri", uri}};
}

Result<Json> SetModelVersionTag(RegistryStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string name, RequireString(request, "name"));
  KILN_ASSIGN_OR_RETURN(int64_t number, RequireVersion(request));
  KILN_ASSIGN_OR_RETURN(std::string key, RequireString(request, "key"));
  KILN_ASSIGN_OR_RETURN(std::string value, RequirePresentString(request, "value"));
  KILN_RETURN_IF_ERROR(store.SetModelVersionTag(name, number, {std::move(key), std::move(value)}));
  return Json::object();
}

Result<Json> DeleteModelVersionTag(RegistryStore& store, const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::string name, RequireString(request, "name"));
  KILN_ASSIGN_OR_RETURN(int64_t number, RequireVersion(request));
  KILN_ASSIGN_OR_RETURN(std::string key, RequireString(request, "key"));
  KILN_RETURN_IF_ERROR(store.DeleteModelVersionTag(name, number, key));
  return Json::object();
}

using RegistryRpc = Result<Json> (*)(RegistryStore&, const Json&);

struct Route {
  const char* method;
  const char* path;
  RegistryRpc rpc;
};

// model_registry.proto's RPCs at their method and path (under /api/2.0/mlflow and
// /ajax-api/2.0/mlflow).
constexpr Route kRoutes[] = {
    {"POST", "/registered-models/create", CreateRegisteredModel},
    {"GET", "/registered-models/get", GetRegisteredModel},
    {"POST", "/registered-models/rename", RenameRegisteredModel},
    {"PATCH", "/registered-models/update", UpdateRegisteredModel},
    {"DELETE", "/registered-models/delete", DeleteRegisteredModel},
    {"GET", "/registered-models/search", SearchRegisteredModels},
    {"POST", "/registered-models/get-latest-versions", GetLatestVersions},
    {"GET", "/registered-models/get-latest-versions", GetLatestVersions},
    {"POST", "/registered-models/set-tag", SetRegisteredModelTag},
    {"DELETE", "/registered-models/delete-tag", DeleteRegisteredModelTag},
    {"POST", "/registered-models/alias", SetAlias},
    {"DELETE", "/registered-models/alias", DeleteAlias},
    {"GET", "/registered-models/alias", GetModelVersionByAlias},
    {"POST", "/model-versions/create", CreateModelVersion},
    {"GET", "/model-versions/get", GetModelVersion},
    {"PATCH", "/model-versions/update", UpdateModelVersion},
    {"DELETE", "/model-versions/delete", DeleteModelVersion},
    {"POST", "/model-versions/transition-stage", TransitionStage},
    {"GET", "/model-versions/search", SearchModelVersions},
    {"GET", "/model-versions/get-download-uri", GetDownloadUri},
    {"POST", "/model-versions/set-tag", SetModelVersionTag},
    {"DELETE", "/model-versions/delete-tag", DeleteModelVersionTag},
};

}  // namespace

void RegisterRegistryRoutes(http::Router& router, registry::RegistryStore& registry) {
  for (const Route& route : kRoutes) {
    RegistryRpc rpc = route.rpc;
    http::Handler handler = JsonHandler([&registry, rpc](const Json& request) {
      return rpc(registry, request);
    });
    AddMlflowRoute(router, route.method, route.path, handler);
  }
}

void RegisterModelVersionArtifactRoutes(http::Router& router, registry::RegistryStore& registry,
                                        const std::string& artifact_root) {
  std::string root = artifact_root;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  // MLflow's get_model_version_artifact_handler: the file `path` below the version's download
  // URI (storage_location, else source), streamed as an attachment.
  http::Handler handler = [&registry, root](const http::Request& request,
                                            http::Response& response) {
    Status status = [&]() -> Status {
      KILN_ASSIGN_OR_RETURN(Json decoded, DecodeRequest(request));
      KILN_ASSIGN_OR_RETURN(std::string name, RequireString(decoded, "name"));
      KILN_ASSIGN_OR_RETURN(int64_t number, RequireVersion(decoded));
      KILN_ASSIGN_OR_RETURN(std::string path, RequireString(decoded, "path"));
      KILN_ASSIGN_OR_RETURN(std::string relative, SafeRelativePath(path));
      if (relative.empty()) return InvalidPath();
      KILN_ASSIGN_OR_RETURN(std::string uri, registry.GetModelVersionDownloadUri(name, number));
      KILN_ASSIGN_OR_RETURN(std::string folder, LocalArtifactFolder(uri, root));
      SendFile(folder, JoinPath(folder, relative), response);
      return Status::Ok();
    }();
    if (!status.ok()) WriteError(status, response);
  };
  router.Add("GET", "/model-versions/get-artifact", handler);
  AddMlflowRoute(router, "GET", "/model-versions/get-artifact", handler);
}

}  // namespace kiln::api
