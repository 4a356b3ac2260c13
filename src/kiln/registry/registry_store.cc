#include "kiln/registry/registry_store.h"

#include <algorithm>
#include <array>
#include <map>

#include "kiln/tracking/search.h"

namespace kiln::registry {
namespace {

using store::Rows;
using store::Transaction;
using store::Value;

using VersionKey = std::pair<std::string, int64_t>;

constexpr std::array<std::string_view, 4> kStages = {"None", "Staging", "Production",
                                                     "Archived"};

// Keys per statement when loading entities by key: far below SQLite's and PostgreSQL's limits on
// bound parameters.
constexpr size_t kKeysPerStatement = 300;

constexpr std::string_view kVersionColumns =
    "name, version, creation_time, last_updated_time, description, user_id, current_stage, "
    "source, run_id, run_link, status, status_message, storage_location";

Value OptionalText(const std::optional<std::string>& text) {
  return text.has_value() ? Value(*text) : store::Null();
}

std::string ToLower(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return lower;
}

Status ModelNotFound(std::string_view name) {
  return NotFound("Registered Model with name=" + std::string(name) + " not found");
}

Status VersionNotFound(std::string_view name, int64_t version) {
  return NotFound("Model Version (name=" + std::string(name) +
                  ", version=" + std::to_string(version) + ") not found");
}

Status LengthError(std::string_view what, std::string_view value, size_t limit) {
  return InvalidArgument(std::string(what) + " '" + std::string(value.substr(0, 250)) +
                         "' had length " + std::to_string(value.size()) +
                         ", which exceeded length limit of " + std::to_string(limit));
}

// MLflow's path check for names: the name must equal its POSIX normal form and must not start
// with '/' or '..' (a tag key may become a file name in some stores).
bool PathNotUnique(std::string_view name) {
  if (name.empty()) return false;
  if (name.front() == '/' || name.back() == '/') return true;
  size_t start = 0;
  while (start <= name.size()) {
    size_t slash = name.find('/', start);
    if (slash == std::string_view::npos) slash = name.size();
    std::string_view part = name.substr(start, slash - start);
    if (part.empty() || part == "." || part == "..") return true;
    start = slash + 1;
  }
  return false;
}

Status ValidateTag(std::string_view entity, const Tag& tag) {
  if (tag.key.empty()) {
    return InvalidArgument("Missing value for required parameter 'key'. See the API docs for more "
                           "information about request parameters.");
  }
  for (unsigned char c : tag.key) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.' || c == ' ' || c == '/' || c == ':' || c >= 0x80;
    if (!ok) {
      return InvalidArgument("Invalid tag name: '" + tag.key +
                             "'. Names may only contain alphanumerics, underscores (_), dashes "
                             "(-), periods (.), spaces ( ), colon(:) and slashes (/).");
    }
  }
  if (PathNotUnique(tag.key)) {
    return InvalidArgument("Invalid tag name: '" + tag.key +
                           "'. Names may be treated as files in certain cases, and must not "
                           "resolve to other names when treated as such.");
  }
  if (tag.key.size() > kMaxTagKeyLength) {
    return LengthError(std::string(entity) + " key", tag.key, kMaxTagKeyLength);
  }
  if (tag.value.size() > kMaxTagValueLength) {
    return LengthError(std::string(entity) + " value", tag.value, kMaxTagValueLength);
  }
  return Status::Ok();
}

Status ValidateModelName(std::string_view name) {
  if (name.empty()) return InvalidArgument("Registered model name cannot be empty.");
  return Status::Ok();
}

Result<int64_t> CheckMaxResults(const std::optional<int64_t>& requested, int64_t default_value,
                                int64_t max_value) {
  int64_t max_results = requested.value_or(default_value);
  if (max_results < 1) {
    return InvalidArgument(
        "Invalid value for request parameter max_results. It must be a positive integer, but "
        "got " + std::to_string(max_results));
  }
  if (max_results > max_value) {
    return InvalidArgument("Invalid value for request parameter max_results. It must be at most " +
                           std::to_string(max_value) + ", but got value " +
                           std::to_string(max_results));
  }
  return max_results;
}

// --- loading -------------------------------------------------------------------------------

Status RequireModel(Transaction& tx, const std::string& name) {
  KILN_ASSIGN_OR_RETURN(Rows rows,
                        tx.Query("SELECT 1 FROM registered_models WHERE name = ?", {name}));
  if (rows.empty()) return ModelNotFound(name);
  return Status::Ok();
}

Status RequireVersion(Transaction& tx, const std::string& name, int64_t version) {
  KILN_RETURN_IF_ERROR(RequireModel(tx, name));
  KILN_ASSIGN_OR_RETURN(
      Rows rows,
      tx.Query("SELECT 1 FROM model_versions WHERE name = ? AND version = ?", {name, version}));
  if (rows.empty()) return VersionNotFound(name, version);
  return Status::Ok();
}

// "(name = ? AND version = ?) OR ..." over keys[begin, end), with its parameters.
std::string KeyCondition(const std::vector<VersionKey>& keys, size_t begin, size_t end,
                         std::vector<Value>& params) {
  std::string condition;
  for (size_t i = begin; i < end; ++i) {
    if (!condition.empty()) condition += " OR ";
    condition += "(name = ? AND version = ?)";
    params.emplace_back(keys[i].first);
    params.emplace_back(keys[i].second);
  }
  return condition;
}

// Loads the versions named by `keys`, with their tags and aliases, in the order of `keys`.
// Keys that do not exist are skipped.
Result<std::vector<ModelVersion>> LoadVersions(Transaction& tx,
                                               const std::vector<VersionKey>& keys) {
  std::map<VersionKey, ModelVersion> loaded;
  for (size_t begin = 0; begin < keys.size(); begin += kKeysPerStatement) {
    size_t end = std::min(keys.size(), begin + kKeysPerStatement);
    std::vector<Value> params;
    std::string condition = KeyCondition(keys, begin, end, params);

    KILN_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT " + std::string(kVersionColumns) +
                                                  " FROM model_versions WHERE " + condition,
                                              params));
    for (size_t r = 0; r < rows.size(); ++r) {
      ModelVersion version;
      version.name = rows.Text(r, 0);
      version.version = rows.Int(r, 1);
      version.creation_timestamp = rows.Int(r, 2);
      version.last_updated_timestamp = rows.Int(r, 3);
      version.description = rows.OptText(r, 4);
      version.user_id = rows.OptText(r, 5);
      version.current_stage = rows.Text(r, 6);
      version.source = rows.OptText(r, 7);
      version.run_id = rows.OptText(r, 8);
      version.run_link = rows.OptText(r, 9);
      version.status = rows.Text(r, 10);
      version.status_message = rows.OptText(r, 11);
      version.storage_location = rows.OptText(r, 12);
      VersionKey key(version.name, version.version);
      loaded.emplace(std::move(key), std::move(version));
    }

    KILN_ASSIGN_OR_RETURN(Rows tags, tx.Query("SELECT name, version, key, value FROM "
                                              "model_version_tags WHERE " +
                                                  condition + " ORDER BY key",
                                              params));
    for (size_t r = 0; r < tags.size(); ++r) {
      auto it = loaded.find(VersionKey(tags.Text(r, 0), tags.Int(r, 1)));
      if (it != loaded.end()) it->second.tags.push_back({tags.Text(r, 2), tags.Text(r, 3)});
    }

    KILN_ASSIGN_OR_RETURN(Rows aliases, tx.Query("SELECT name, version, alias FROM "
                                                 "registered_model_aliases WHERE " +
                                                     condition + " ORDER BY alias",
                                                 params));
    for (size_t r = 0; r < aliases.size(); ++r) {
      auto it = loaded.find(VersionKey(aliases.Text(r, 0), aliases.Int(r, 1)));
      if (it != loaded.end()) it->second.aliases.push_back(aliases.Text(r, 2));
    }
  }
  std::vector<ModelVersion> ordered;
  ordered.reserve(keys.size());
  for (const VersionKey& key : keys) {
    auto it = loaded.find(key);
    if (it != loaded.end()) ordered.push_back(it->second);
  }
  return ordered;
}

Result<ModelVersion> LoadVersion(Transaction& tx, const std::string& name, int64_t version) {
  KILN_RETURN_IF_ERROR(RequireModel(tx, name));
  KILN_ASSIGN_OR_RETURN(std::vector<ModelVersion> versions,
                        LoadVersions(tx, {VersionKey(name, version)}));
  if (versions.empty()) return VersionNotFound(name, version);
  return std::move(versions.front());
}

// "?, ?, ..." for names[begin, end), with its parameters.
std::string Placeholders(const std::vector<std::string>& names, size_t begin, size_t end,
                         std::vector<Value>& params) {
  std::string list;
  for (size_t i = begin; i < end; ++i) {
    if (!list.empty()) list += ", ";
    list += "?";
    params.emplace_back(names[i]);
  }
  return list;
}

// The keys of the latest version per stage of each model in names[begin, end), ordered by
// version; `stages` (canonical) restricts the stages when not empty.
Result<std::vector<VersionKey>> LatestVersionKeys(Transaction& tx,
                                                  const std::vector<std::string>& names,
                                                  size_t begin, size_t end,
                                                  const std::vector<std::string>& stages) {
  std::vector<Value> params;
  std::string sql =
      "SELECT name, MAX(version) AS latest FROM model_versions WHERE name IN (" +
      Placeholders(names, begin, end, params) + ")";
  if (!stages.empty()) {
    sql += " AND current_stage IN (" + Placeholders(stages, 0, stages.size(), params) + ")";
  }
  sql += " GROUP BY name, current_stage ORDER BY name, latest";
  KILN_ASSIGN_OR_RETURN(Rows rows, tx.Query(sql, params));
  std::vector<VersionKey> keys;
  keys.reserve(rows.size());
  for (size_t r = 0; r < rows.size(); ++r) keys.emplace_back(rows.Text(r, 0), rows.Int(r, 1));
  return keys;
}

// Loads the models named by `names` with their latest versions, tags and aliases, in the order of
// `names`. Names that do not exist are skipped.
Result<std::vector<RegisteredModel>> LoadModels(Transaction& tx,
                                                const std::vector<std::string>& names) {
  std::map<std::string, RegisteredModel> loaded;
  for (size_t begin = 0; begin < names.size(); begin += kKeysPerStatement) {
    size_t end = std::min(names.size(), begin + kKeysPerStatement);
    std::vector<Value> params;
    std::string list = Placeholders(names, begin, end, params);

    KILN_ASSIGN_OR_RETURN(
        Rows rows, tx.Query("SELECT name, creation_time, last_updated_time, description, user_id "
                            "FROM registered_models WHERE name IN (" +
                                list + ")",
                            params));
    for (size_t r = 0; r < rows.size(); ++r) {
      RegisteredModel model;
      model.name = rows.Text(r, 0);
      model.creation_timestamp = rows.Int(r, 1);
      model.last_updated_timestamp = rows.Int(r, 2);
      model.description = rows.OptText(r, 3);
      model.user_id = rows.OptText(r, 4);
      std::string key = model.name;
      loaded.emplace(std::move(key), std::move(model));
    }

    KILN_ASSIGN_OR_RETURN(Rows tags, tx.Query("SELECT name, key, value FROM registered_model_tags "
                                              "WHERE name IN (" +
                                                  list + ") ORDER BY key",
                                              params));
    for (size_t r = 0; r < tags.size(); ++r) {
      auto it = loaded.find(tags.Text(r, 0));
      if (it != loaded.end()) it->second.tags.push_back({tags.Text(r, 1), tags.Text(r, 2)});
    }

    KILN_ASSIGN_OR_RETURN(Rows aliases,
                          tx.Query("SELECT name, alias, version FROM registered_model_aliases "
                                   "WHERE name IN (" +
                                       list + ") ORDER BY alias",
                                   params));
    for (size_t r = 0; r < aliases.size(); ++r) {
      auto it = loaded.find(aliases.Text(r, 0));
      if (it != loaded.end()) {
        it->second.aliases.push_back({aliases.Text(r, 1), aliases.Int(r, 2)});
      }
    }

    KILN_ASSIGN_OR_RETURN(std::vector<VersionKey> latest_keys,
                          LatestVersionKeys(tx, names, begin, end, {}));
    KILN_ASSIGN_OR_RETURN(std::vector<ModelVersion> latest, LoadVersions(tx, latest_keys));
    for (ModelVersion& version : latest) {
      auto it = loaded.find(version.name);
      if (it != loaded.end()) it->second.latest_versions.push_back(std::move(version));
    }
  }
  std::vector<RegisteredModel> ordered;
  ordered.reserve(names.size());
  for (const std::string& name : names) {
    auto it = loaded.find(name);
    if (it != loaded.end()) ordered.push_back(it->second);
  }
  return ordered;
}

Result<RegisteredModel> LoadModel(Transaction& tx, const std::string& name) {
  KILN_ASSIGN_OR_RETURN(std::vector<RegisteredModel> models, LoadModels(tx, {name}));
  if (models.empty()) return ModelNotFound(name);
  return std::move(models.front());
}

// --- writing -------------------------------------------------------------------------------

Status TouchModel(Transaction& tx, const std::string& name, int64_t now) {
  KILN_ASSIGN_OR_RETURN(
      int64_t changed,
      tx.Exec("UPDATE registered_models SET last_updated_time = ? WHERE name = ?", {now, name}));
  if (changed == 0) return ModelNotFound(name);
  return Status::Ok();
}

Status TouchVersion(Transaction& tx, const std::string& name, int64_t version, int64_t now) {
  KILN_ASSIGN_OR_RETURN(int64_t changed,
                        tx.Exec("UPDATE model_versions SET last_updated_time = ? "
                                "WHERE name = ? AND version = ?",
                                {now, name, version}));
  if (changed == 0) return VersionNotFound(name, version);
  return Status::Ok();
}

// Appends where `alias` of model `name` points now (nullopt: deleted) to its history.
Status RecordAliasChange(Transaction& tx, const std::string& name, const std::string& alias,
                         std::optional<int64_t> version, int64_t now) {
  KILN_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT COALESCE(MAX(sequence), 0) FROM "
                                            "registered_model_alias_history "
                                            "WHERE name = ? AND alias = ?",
                                            {name, alias}));
  int64_t sequence = rows.Int(0, 0) + 1;
  Value version_value = version.has_value() ? Value(*version) : store::Null();
  KILN_ASSIGN_OR_RETURN(
      int64_t inserted,
      tx.Exec("INSERT INTO registered_model_alias_history (name, alias, version, changed_at, "
              "sequence) VALUES (?, ?, ?, ?, ?)",
              {name, alias, version_value, now, sequence}));
  (void)inserted;
  return Status::Ok();
}

// Sets `tag` on the owner whose key columns are `owner_columns` = `owner`: delete then insert,
// portable across both backends and atomic inside the caller's transaction.
Status UpsertTag(Transaction& tx, std::string_view table,
                 const std::vector<std::string_view>& owner_columns,
                 const std::vector<Value>& owner, const Tag& tag) {
  std::string where;
  std::string columns;
  std::string placeholders;
  for (std::string_view column : owner_columns) {
    where += std::string(column) + " = ? AND ";
    columns += std::string(column) + ", ";
    placeholders += "?, ";
  }
  std::vector<Value> params = owner;
  params.emplace_back(tag.key);
  KILN_ASSIGN_OR_RETURN(int64_t deleted, tx.Exec("DELETE FROM " + std::string(table) + " WHERE " +
                                                     where + "key = ?",
                                                 params));
  (void)deleted;
  params.emplace_back(tag.value);
  KILN_ASSIGN_OR_RETURN(int64_t inserted,
                        tx.Exec("INSERT INTO " + std::string(table) + " (" + columns +
                                    "key, value) VALUES (" + placeholders + "?, ?)",
                                params));
  (void)inserted;
  return Status::Ok();
}

// Deduplicates tags by key, the last value winning (as MLflow's create calls do).
std::vector<Tag> LastValuePerKey(const std::vector<Tag>& tags) {
  std::map<std::string, std::string> by_key;
  for (const Tag& tag : tags) by_key[tag.key] = tag.value;
  std::vector<Tag> unique;
  for (auto& [key, value] : by_key) unique.push_back({key, value});
  return unique;
}

}  // namespace

Result<std::string> CanonicalStage(std::string_view stage) {
  std::string lower = ToLower(stage);
  for (std::string_view canonical : kStages) {
    if (lower == ToLower(canonical)) return std::string(canonical);
  }
  return InvalidArgument("Invalid Model Version stage: " + std::string(stage) +
                         ". Value must be one of None, Staging, Production, Archived.");
}

Status ValidateAliasName(std::string_view alias) {
  if (alias.empty()) return InvalidArgument("Registered model alias name cannot be empty.");
  for (unsigned char c : alias) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c >= 0x80;
    if (!ok) {
      return InvalidArgument("Invalid alias name: '" + std::string(alias) +
                             "'. Names may only contain alphanumerics, underscores (_), and "
                             "dashes (-).");
    }
  }
  if (alias.size() > kMaxAliasLength) {
    return LengthError("Registered model alias name", alias, kMaxAliasLength);
  }
  if (ToLower(alias) == "latest") {
    return InvalidArgument("'latest' alias name (case insensitive) is reserved.");
  }
  if (alias.size() >= 2 && (alias[0] == 'v' || alias[0] == 'V') &&
      std::all_of(alias.begin() + 1, alias.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return InvalidArgument("Version alias name '" + std::string(alias) + "' is reserved.");
  }
  return Status::Ok();
}

Result<std::unique_ptr<RegistryStore>> RegistryStore::Open(store::Database* database,
                                                           Clock* clock) {
  assert(database != nullptr && clock != nullptr);
  return std::unique_ptr<RegistryStore>(new RegistryStore(database, clock));
}

// --- registered models ---------------------------------------------------------------------

Result<RegisteredModel> RegistryStore::CreateRegisteredModel(
    const CreateRegisteredModelRequest& request) {
  KILN_RETURN_IF_ERROR(ValidateModelName(request.name));
  for (const Tag& tag : request.tags) KILN_RETURN_IF_ERROR(ValidateTag("Registered model", tag));
  std::vector<Tag> tags = LastValuePerKey(request.tags);
  RegisteredModel created;
  KILN_RETURN_IF_ERROR(database_->Write([&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(Rows existing, tx.Query("SELECT 1 FROM registered_models WHERE name = ?",
                                                  {request.name}));
    if (!existing.empty()) {
      return AlreadyExists("Registered Model (name=" + request.name + ") already exists.");
    }
    int64_t now = clock_->NowMillis();
    KILN_ASSIGN_OR_RETURN(
        int64_t inserted,
        tx.Exec("INSERT INTO registered_models (name, creation_time, last_updated_time, "
                "description, user_id) VALUES (?, ?, ?, ?, ?)",
                {request.name, now, now, OptionalText(request.description),
                 OptionalText(request.user_id)}));
    (void)inserted;
    for (const Tag& tag : tags) {
      KILN_RETURN_IF_ERROR(UpsertTag(tx, "registered_model_tags", {"name"}, {request.name}, tag));
    }
    KILN_ASSIGN_OR_RETURN(created, LoadModel(tx, request.name));
    return Status::Ok();
  }));
  return created;
}

Result<RegisteredModel> RegistryStore::GetRegisteredModel(const std::string& name) {
  KILN_RETURN_IF_ERROR(ValidateModelName(name));
  RegisteredModel model;
  KILN_RETURN_IF_ERROR(database_->Read([&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(model, LoadModel(tx, name));
    return Status::Ok();
  }));
  return model;
}

Result<RegisteredModel> RegistryStore::RenameRegisteredModel(const std::string& name,
                                                             const std::string& new_name) {
  KILN_RETURN_IF_ERROR(ValidateModelName(name));
  KILN_RETURN_IF_ERROR(ValidateModelName(new_name));
  RegisteredModel renamed;
  KILN_RETURN_IF_ERROR(database_->Write([&](Transaction& tx) -> Status {
    int64_t now = clock_->NowMillis();
    KILN_RETURN_IF_ERROR(TouchModel(tx, name, now));
    if (new_name != name) {
      KILN_ASSIGN_OR_RETURN(
          Rows taken, tx.Query("SELECT 1 FROM registered_models WHERE name = ?", {new_name}));
      if (!taken.empty()) {
        return AlreadyExists("Registered Model (name=" + new_name + ") already exists.");
      }
      // No foreign keys tie these tables together, so the order of the updates is free.
      static constexpr std::array<std::string_view, 6> kTables = {
          "registered_models",  "registered_model_tags",    "model_versions",
          "model_version_tags", "registered_model_aliases", "registered_model_alias_history"};
      for (std::string_view table : kTables) {
        KILN_ASSIGN_OR_RETURN(int64_t changed,
                              tx.Exec("UPDATE " + std::string(table) +
                                          " SET name = ? WHERE name = ?",
                                      {new_name, name}));
        (void)changed;
      }
      KILN_ASSIGN_OR_RETURN(int64_t touched,
                            tx.Exec("UPDATE model_versions SET last_updated_time = ? "
                                    "WHERE name = ?",
                                    {now, new_name}));
      (void)touched;
    }
    KILN_ASSIGN_OR_RETURN(renamed, LoadModel(tx, new_name));
    return Status::Ok();
  }));
  return renamed;
}

Result<RegisteredModel> RegistryStore::UpdateRegisteredModel(const std::string& name,
                                                             const std::string& description) {
  KILN_RETURN_IF_ERROR(ValidateModelName(name));
  RegisteredModel updated;
  KILN_RETURN_IF_ERROR(database_->Write([&](Transaction& tx) -> Status {
    int64_t now = clock_->NowMillis();
    KILN_ASSIGN_OR_RETURN(int64_t changed,
                          tx.Exec("UPDATE registered_models SET description = ?, "
                                  "last_updated_time = ? WHERE name = ?",
                                  {description, now, name}));
    if (changed == 0) return ModelNotFound(name);
    KILN_ASSIGN_OR_RETURN(updated, LoadModel(tx, name));
    return Status::Ok();
  }));
  return updated;
}

Status RegistryStore::DeleteRegisteredModel(const std::string& name) {
  KILN_RETURN_IF_ERROR(ValidateModelName(name));
  return database_->Write([&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(int64_t deleted,
                          tx.Exec("DELETE FROM registered_models WHERE name = ?", {name}));
    if (deleted == 0) return ModelNotFound(name);
    static constexpr std::array<std::string_view, 5> kOwned = {
        "registered_model_tags", "model_versions", "model_version_tags",
        "registered_model_aliases", "registered_model_alias_history"};
    for (std::string_view table : kOwned) {
      KILN_ASSIGN_OR_RETURN(int64_t changed,
                            tx.Exec("DELETE FROM " + std::string(table) + " WHERE name = ?",
                                    {name}));
      (void)changed;
    }
    return Status::Ok();
  });
}

Result<Page<RegisteredModel>> RegistryStore::SearchRegisteredModels(const SearchRequest& request) {
  KILN_ASSIGN_OR_RETURN(int64_t max_results,
                        CheckMaxResults(request.max_results, kDefaultModelSearchResults,
                                        kMaxModelSearchResults));
  tracking::RegisteredModelSearchSpec spec;
  spec.filter = request.filter;
  spec.order_by = request.order_by;
  spec.max_results = max_results;
  if (!request.page_token.empty()) {
    KILN_ASSIGN_OR_RETURN(spec.offset, tracking::DecodePageToken(request.page_token));
  }
  KILN_ASSIGN_OR_RETURN(tracking::SqlStatement statement,
                        tracking::BuildRegisteredModelSearchSql(spec, database_->dialect()));
  Page<RegisteredModel> page;
  KILN_RETURN_IF_ERROR(database_->Read([&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(Rows rows, tx.Query(statement.sql, statement.params));
    std::vector<std::string> names;
    for (size_t r = 0; r < rows.size() && static_cast<int64_t>(r) < max_results; ++r) {
      names.push_back(rows.Text(r, 0));
    }
    page.next_page_token.clear();
    if (static_cast<int64_t>(rows.size()) > max_results) {
      page.next_page_token = tracking::EncodePageToken(spec.offset + max_results);
    }
    KILN_ASSIGN_OR_RETURN(page.items, LoadModels(tx, names));
    return Status::Ok();
  }));
  return page;
}

Status RegistryStore::SetRegisteredModelTag(const std::string& name, const Tag& tag) {
  KILN_RETURN_IF_ERROR(ValidateModelName(name));
  KILN_RETURN_IF_ERROR(ValidateTag("Registered model", tag));
  return database_->Write([&](Transaction& tx) -> Status {
    KILN_RETURN_IF_ERROR(TouchModel(tx, name, clock_->NowMillis()));
    return UpsertTag(tx, "registered_model_tags", {"name"}, {name}, tag);
  });
}

Status RegistryStore::DeleteRegisteredModelTag(const std::string& name, const std::string& key) {
  KILN_RETURN_IF_ERROR(ValidateModelName(name));
  return database_->Write([&](Transaction& tx) -> Status {
    KILN_RETURN_IF_ERROR(RequireModel(tx, name));
    KILN_ASSIGN_OR_RETURN(
        int64_t deleted,
        tx.Exec("DELETE FROM registered_model_tags WHERE name = ? AND key = ?", {name, key}));
    (void)deleted;
    return Status::Ok();
  });
}

Result<std::vector<ModelVersion>> RegistryStore::GetLatestVersions(
    const std::string& name, const std::vector<std::string>& stages) {
  KILN_RETURN_IF_ERROR(ValidateModelName(name));
  std::vector<std::string> canonical;
  for (const std::string& stage : stages) {
    KILN_ASSIGN_OR_RETURN(std::string one, CanonicalStage(stage));
    if (std::find(canonical.begin(), canonical.end(), one) == canonical.end()) {
      canonical.push_back(std::move(one));
    }
  }
  std::vector<ModelVersion> latest;
  KILN_RETURN_IF_ERROR(database_->Read([&](Transaction& tx) -> Status {
    KILN_RETURN_IF_ERROR(RequireModel(tx, name));
    KILN_ASSIGN_OR_RETURN(std::vector<VersionKey> keys,
                          LatestVersionKeys(tx, {name}, 0, 1, canonical));
    KILN_ASSIGN_OR_RETURN(latest, LoadVersions(tx, keys));
    return Status::Ok();
  }));
  return latest;
}

// --- model versions ------------------------------------------------------------------------

Result<ModelVersion> RegistryStore::CreateModelVersion(const CreateModelVersionRequest& request) {
  KILN_RETURN_IF_ERROR(ValidateModelName(request.name));
  for (const Tag& tag : request.tags) KILN_RETURN_IF_ERROR(ValidateTag("Model version", tag));
  std::vector<Tag> tags = LastValuePerKey(request.tags);
  ModelVersion created;
  KILN_RETURN_IF_ERROR(database_->Write([&](Transaction& tx) -> Status {
    int64_t now = clock_->NowMillis();
    // Updating the model's row first takes its row lock on PostgreSQL, so concurrent creates for
    // one model queue here; SQLite has a single writer already. last_version only grows, so a
    // deleted version's number is never handed out again.
    KILN_RETURN_IF_ERROR(TouchModel(tx, request.name, now));
    KILN_ASSIGN_OR_RETURN(
        Rows rows, tx.Query("UPDATE registered_models SET last_version = last_version + 1 "
                            "WHERE name = ? RETURNING last_version",
                            {request.name}));
    if (rows.empty()) return Internal("registered model '" + request.name + "' vanished");
    int64_t version = rows.Int(0, 0);
    KILN_ASSIGN_OR_RETURN(
        int64_t inserted,
        tx.Exec("INSERT INTO model_versions (name, version, creation_time, last_updated_time, "
                "description, user_id, current_stage, source, run_id, run_link, status, "
                "status_message, storage_location) "
                "VALUES (?, ?, ?, ?, ?, ?, 'None', ?, ?, ?, 'READY', NULL, ?)",
                {request.name, version, now, now, OptionalText(request.description),
                 OptionalText(request.user_id), request.source, OptionalText(request.run_id),
                 OptionalText(request.run_link), OptionalText(request.storage_location)}));
    (void)inserted;
    for (const Tag& tag : tags) {
      KILN_RETURN_IF_ERROR(UpsertTag(tx, "model_version_tags", {"name", "version"},
                                     {request.name, version}, tag));
    }
    KILN_ASSIGN_OR_RETURN(created, LoadVersion(tx, request.name, version));
    return Status::Ok();
  }));
  return created;
}

Result<ModelVersion> RegistryStore::GetModelVersion(const std::string& name, int64_t version) {
  KILN_RETURN_IF_ERROR(ValidateModelName(name));
  ModelVersion found;
  KILN_RETURN_IF_ERROR(database_->Read([&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(found, LoadVersion(tx, name, version));
    return Status::Ok();
  }));
  return found;
}

Result<ModelVersion> RegistryStore::UpdateModelVersion(
    const std::string& name, int64_t version, const std::optional<std::string>& description) {
  KILN_RETURN_IF_ERROR(ValidateModelName(name));
  ModelVersion updated;
  KILN_RETURN_IF_ERROR(database_->Write([&](Transaction& tx) -> Status {
    KILN_RETURN_IF_ERROR(RequireModel(tx, name));
    int64_t now = clock_->NowMillis();
    KILN_RETURN_IF_ERROR(TouchVersion(tx, name, version, now));
    if (description.has_value()) {
      KILN_ASSIGN_OR_RETURN(int64_t changed,
                            tx.Exec("UPDATE model_versions SET description = ? "
                                    "WHERE name = ? AND version = ?",
                                    {*description, name, version}));
      (void)changed;
    }
    KILN_ASSIGN_OR_RETURN(updated, LoadVersion(tx, name, version));
    return Status::Ok();
  }));
  return updated;
}

Status RegistryStore::DeleteModelVersion(const std::string& name, int64_t version) {
  KILN_RETURN_IF_ERROR(ValidateModelName(name));
  return database_->Write([&](Transaction& tx) -> Status {
    KILN_RETURN_IF_ERROR(RequireModel(tx, name));
    KILN_ASSIGN_OR_RETURN(
        int64_t deleted,
        tx.Exec("DELETE FROM model_versions WHERE name = ? AND version = ?", {name, version}));
    if (deleted == 0) return VersionNotFound(name, version);
    int64_t now = clock_->NowMillis();
    KILN_RETURN_IF_ERROR(TouchModel(tx, name, now));
    KILN_ASSIGN_OR_RETURN(
        int64_t tags_deleted,
        tx.Exec("DELETE FROM model_version_tags WHERE name = ? AND version = ?", {name, version}));
    (void)tags_deleted;
    KILN_ASSIGN_OR_RETURN(Rows aliases,
                          tx.Query("SELECT alias FROM registered_model_aliases "
                                   "WHERE name = ? AND version = ? ORDER BY alias",
                                   {name, version}));
    for (size_t r = 0; r < aliases.size(); ++r) {
      std::string alias = aliases.Text(r, 0);
      KILN_ASSIGN_OR_RETURN(
          int64_t alias_deleted,
          tx.Exec("DELETE FROM registered_model_aliases WHERE name = ? AND alias = ?",
                  {name, alias}));
      (void)alias_deleted;
      KILN_RETURN_IF_ERROR(RecordAliasChange(tx, name, alias, std::nullopt, now));
    }
    return Status::Ok();
  });
}

Result<Page<ModelVersion>> RegistryStore::SearchModelVersions(const SearchRequest& request) {
  KILN_ASSIGN_OR_RETURN(int64_t max_results,
                        CheckMaxResults(request.max_results, kDefaultVersionSearchResults,
                                        kMaxVersionSearchResults));
  tracking::ModelVersionSearchSpec spec;
  spec.filter = request.filter;
  spec.order_by = request.order_by;
  spec.max_results = max_results;
  if (!request.page_token.empty()) {
    KILN_ASSIGN_OR_RETURN(spec.offset, tracking::DecodePageToken(request.page_token));
  }
  KILN_ASSIGN_OR_RETURN(tracking::SqlStatement statement,
                        tracking::BuildModelVersionSearchSql(spec, database_->dialect()));
  Page<ModelVersion> page;
  KILN_RETURN_IF_ERROR(database_->Read([&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(Rows rows, tx.Query(statement.sql, statement.params));
    std::vector<VersionKey> keys;
    for (size_t r = 0; r < rows.size() && static_cast<int64_t>(r) < max_results; ++r) {
      keys.emplace_back(rows.Text(r, 0), rows.Int(r, 1));
    }
    page.next_page_token.clear();
    if (static_cast<int64_t>(rows.size()) > max_results) {
      page.next_page_token = tracking::EncodePageToken(spec.offset + max_results);
    }
    KILN_ASSIGN_OR_RETURN(page.items, LoadVersions(tx, keys));
    return Status::Ok();
  }));
  return page;
}

Status RegistryStore::SetModelVersionTag(const std::string& name, int64_t version,
                                         const Tag& tag) {
  KILN_RETURN_IF_ERROR(ValidateModelName(name));
  KILN_RETURN_IF_ERROR(ValidateTag("Model version", tag));
  return database_->Write([&](Transaction& tx) -> Status {
    KILN_RETURN_IF_ERROR(RequireVersion(tx, name, version));
    return UpsertTag(tx, "model_version_tags", {"name", "version"}, {name, version}, tag);
  });
}

Status RegistryStore::DeleteModelVersionTag(const std::string& name, int64_t version,
                                            const std::string& key) {
  KILN_RETURN_IF_ERROR(ValidateModelName(name));
  return database_->Write([&](Transaction& tx) -> Status {
    KILN_RETURN_IF_ERROR(RequireVersion(tx, name, version));
    KILN_ASSIGN_OR_RETURN(int64_t deleted,
                          tx.Exec("DELETE FROM model_version_tags "
                                  "WHERE name = ? AND version = ? AND key = ?",
                                  {name, version, key}));
    (void)deleted;
    return Status::Ok();
  });
}

Result<ModelVersion> RegistryStore::TransitionModelVersionStage(const std::string& name,
                                                                int64_t version,
                                                                const std::string& stage,
                                                                bool archive_existing_versions) {
  KILN_RETURN_IF_ERROR(ValidateModelName(name));
  KILN_ASSIGN_OR_RETURN(std::string canonical, CanonicalStage(stage));
  if (archive_existing_versions && canonical != "Staging" && canonical != "Production") {
    return InvalidArgument("Model version transition cannot archive existing model versions "
                           "because '" + canonical + "' is not an Active stage. Valid stages are "
                           "Staging, Production");
  }
  ModelVersion transitioned;
  KILN_RETURN_IF_ERROR(database_->Write([&](Transaction& tx) -> Status {
    int64_t now = clock_->NowMillis();
    KILN_RETURN_IF_ERROR(TouchModel(tx, name, now));
    KILN_ASSIGN_OR_RETURN(int64_t changed,
                          tx.Exec("UPDATE model_versions SET current_stage = ?, "
                                  "last_updated_time = ? WHERE name = ? AND version = ?",
                                  {canonical, now, name, version}));
    if (changed == 0) return VersionNotFound(name, version);
    if (archive_existing_versions) {
      KILN_ASSIGN_OR_RETURN(int64_t archived,
                            tx.Exec("UPDATE model_versions SET current_stage = 'Archived', "
                                    "last_updated_time = ? "
                                    "WHERE name = ? AND current_stage = ? AND version <> ?",
                                    {now, name, canonical, version}));
      (void)archived;
    }
    KILN_ASSIGN_OR_RETURN(transitioned, LoadVersion(tx, name, version));
    return Status::Ok();
  }));
  return transitioned;
}

Result<std::string> RegistryStore::GetModelVersionDownloadUri(const std::string& name,
                                                              int64_t version) {
  KILN_ASSIGN_OR_RETURN(ModelVersion found, GetModelVersion(name, version));
  if (found.storage_location.has_value() && !found.storage_location->empty()) {
    return *found.storage_location;
  }
  return found.source.value_or("");
}

// --- aliases -------------------------------------------------------------------------------

Status RegistryStore::SetRegisteredModelAlias(const std::string& name, const std::string& alias,
                                              int64_t version) {
  KILN_RETURN_IF_ERROR(ValidateModelName(name));
  KILN_RETURN_IF_ERROR(ValidateAliasName(alias));
  return database_->Write([&](Transaction& tx) -> Status {
    KILN_RETURN_IF_ERROR(RequireVersion(tx, name, version));
    KILN_ASSIGN_OR_RETURN(Rows current,
                          tx.Query("SELECT version FROM registered_model_aliases "
                                   "WHERE name = ? AND alias = ?",
                                   {name, alias}));
    if (!current.empty() && current.Int(0, 0) == version) return Status::Ok();  // no change
    int64_t now = clock_->NowMillis();
    if (current.empty()) {
      KILN_ASSIGN_OR_RETURN(int64_t inserted,
                            tx.Exec("INSERT INTO registered_model_aliases (name, alias, version) "
                                    "VALUES (?, ?, ?)",
                                    {name, alias, version}));
      (void)inserted;
    } else {
      KILN_ASSIGN_OR_RETURN(int64_t updated,
                            tx.Exec("UPDATE registered_model_aliases SET version = ? "
                                    "WHERE name = ? AND alias = ?",
                                    {version, name, alias}));
      (void)updated;
    }
    KILN_RETURN_IF_ERROR(TouchModel(tx, name, now));
    return RecordAliasChange(tx, name, alias, version, now);
  });
}

Status RegistryStore::DeleteRegisteredModelAlias(const std::string& name,
                                                 const std::string& alias) {
  KILN_RETURN_IF_ERROR(ValidateModelName(name));
  KILN_RETURN_IF_ERROR(ValidateAliasName(alias));
  return database_->Write([&](Transaction& tx) -> Status {
    KILN_RETURN_IF_ERROR(RequireModel(tx, name));
    KILN_ASSIGN_OR_RETURN(
        int64_t deleted,
        tx.Exec("DELETE FROM registered_model_aliases WHERE name = ? AND alias = ?",
                {name, alias}));
    if (deleted == 0) return Status::Ok();
    int64_t now = clock_->NowMillis();
    KILN_RETURN_IF_ERROR(TouchModel(tx, name, now));
    return RecordAliasChange(tx, name, alias, std::nullopt, now);
  });
}

Result<ModelVersion> RegistryStore::GetModelVersionByAlias(const std::string& name,
                                                           const std::string& alias) {
  KILN_RETURN_IF_ERROR(ValidateModelName(name));
  ModelVersion found;
  KILN_RETURN_IF_ERROR(database_->Read([&](Transaction& tx) -> Status {
    KILN_RETURN_IF_ERROR(RequireModel(tx, name));
    KILN_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT version FROM registered_model_aliases "
                                              "WHERE name = ? AND alias = ?",
                                              {name, alias}));
    if (rows.empty()) return NotFound("Registered model alias " + alias + " not found.");
    KILN_ASSIGN_OR_RETURN(found, LoadVersion(tx, name, rows.Int(0, 0)));
    return Status::Ok();
  }));
  return found;
}

Result<std::vector<AliasChange>> RegistryStore::GetAliasHistory(const std::string& name,
                                                                const std::string& alias) {
  KILN_RETURN_IF_ERROR(ValidateModelName(name));
  std::vector<AliasChange> history;
  KILN_RETURN_IF_ERROR(database_->Read([&](Transaction& tx) -> Status {
    KILN_RETURN_IF_ERROR(RequireModel(tx, name));
    KILN_ASSIGN_OR_RETURN(Rows rows,
                          tx.Query("SELECT alias, version, changed_at, sequence "
                                   "FROM registered_model_alias_history "
                                   "WHERE name = ? AND alias = ? ORDER BY sequence",
                                   {name, alias}));
    history.clear();
    for (size_t r = 0; r < rows.size(); ++r) {
      history.push_back({rows.Text(r, 0), rows.OptInt(r, 1), rows.Int(r, 2), rows.Int(r, 3)});
    }
    return Status::Ok();
  }));
  return history;
}

}  // namespace kiln::registry
