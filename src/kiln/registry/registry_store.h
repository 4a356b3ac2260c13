// The model registry: registered models, their numbered versions, stages, tags and aliases, as
// MLflow's model registry defines them, stored in kiln's metadata database.
//
// Tables (src/kiln/store/schema.cc): registered_models, registered_model_tags, model_versions,
// model_version_tags, registered_model_aliases, registered_model_alias_history.
//
// Contracts:
// - Every mutating call is one Database::Write: it commits whole or not at all, and it is durable
//   once it returns Ok (the database's fsync policy). Bodies have no side effects outside the
//   transaction, so the database may retry them.
// - Version numbers are max(version) + 1 per model, allocated inside the write transaction after
//   the model's row has been updated (which takes PostgreSQL's row lock; SQLite has one writer),
//   so concurrent creates of one model get distinct, consecutive numbers.
// - Every alias change (set to another version, or delete) appends a row to the alias history,
//   numbered per (model, alias) from 1; rename carries the history along; deleting the model
//   deletes it.
// - Deleting a version deletes its tags and the aliases that point to it (each alias deletion is
//   recorded in the history). Deleting a model deletes everything it owns.
// - Errors: unknown model or version is NotFound with MLflow's wording; a taken name is
//   AlreadyExists; malformed input (stage, alias, tag key, max_results, page token) is
//   InvalidArgument naming the value.
//
// Thread safety: a RegistryStore is stateless apart from its database and clock pointers, both
// thread-safe; any thread may call any method at any time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kiln/core/clock.h"
#include "kiln/core/status.h"
#include "kiln/store/database.h"

namespace kiln::registry {

struct Tag {
  std::string key;
  std::string value;
  bool operator==(const Tag&) const = default;
};

struct ModelAlias {
  std::string alias;
  int64_t version = 0;
  bool operator==(const ModelAlias&) const = default;
};

// Fields that are std::optional are NULL in the database when unset and are then left out of
// MLflow's replies; an empty string that was set is still sent (MLflow's proto2 semantics: the
// REST handlers store "" for a description, run_id or run_link the request did not carry).
struct ModelVersion {
  std::string name;
  int64_t version = 0;  // 1, 2, ...; a string on MLflow's wire
  int64_t creation_timestamp = 0;
  int64_t last_updated_timestamp = 0;
  std::optional<std::string> user_id;
  std::string current_stage = "None";  // None | Staging | Production | Archived
  std::optional<std::string> description;
  std::optional<std::string> source;
  std::optional<std::string> run_id;
  std::string status = "READY";  // PENDING_REGISTRATION | FAILED_REGISTRATION | READY
  std::optional<std::string> status_message;
  std::vector<Tag> tags;  // sorted by key
  std::optional<std::string> run_link;
  std::vector<std::string> aliases;  // sorted
  // Where the model's files are, when it differs from source (not part of MLflow's reply).
  std::optional<std::string> storage_location;
};

struct RegisteredModel {
  std::string name;
  int64_t creation_timestamp = 0;
  int64_t last_updated_timestamp = 0;
  std::optional<std::string> user_id;
  std::optional<std::string> description;
  // Per stage that has versions, the highest version in it; ordered by version.
  std::vector<ModelVersion> latest_versions;
  std::vector<Tag> tags;           // sorted by key
  std::vector<ModelAlias> aliases;  // sorted by alias
};

// One entry of an alias's history: where the alias pointed after the change (nullopt: deleted).
struct AliasChange {
  std::string alias;
  std::optional<int64_t> version;
  int64_t changed_at = 0;  // ms since the epoch
  int64_t sequence = 0;    // 1, 2, ... per (model, alias), in the order of the changes
};

template <typename T>
struct Page {
  std::vector<T> items;
  std::string next_page_token;  // empty on the last page
};

struct CreateRegisteredModelRequest {
  std::string name;
  std::vector<Tag> tags;
  std::optional<std::string> description;
  std::optional<std::string> user_id;
};

struct CreateModelVersionRequest {
  std::string name;
  std::string source;
  std::optional<std::string> run_id;
  std::vector<Tag> tags;
  std::optional<std::string> run_link;
  std::optional<std::string> description;
  std::optional<std::string> user_id;
  std::optional<std::string> storage_location;
};

struct SearchRequest {
  std::string filter;
  std::vector<std::string> order_by;
  std::optional<int64_t> max_results;  // nullopt: the default (100 models, 10,000 versions)
  std::string page_token;
};

// Limits, as MLflow's (utils/validation.py, store/model_registry/__init__.py).
inline constexpr size_t kMaxTagKeyLength = 250;
inline constexpr size_t kMaxTagValueLength = 100000;
inline constexpr size_t kMaxAliasLength = 255;
inline constexpr int64_t kDefaultModelSearchResults = 100;
inline constexpr int64_t kMaxModelSearchResults = 1000;
inline constexpr int64_t kDefaultVersionSearchResults = 10000;
inline constexpr int64_t kMaxVersionSearchResults = 200000;

// "none", "STAGING", ... -> "None", "Staging", ...; anything else is MLflow's
// "Invalid Model Version stage: X. Value must be one of None, Staging, Production, Archived."
Result<std::string> CanonicalStage(std::string_view stage);

// Checks an alias name as MLflow does: ^[\w\-]*$, non-empty, at most 255 characters, and not
// reserved ("latest" in any case, v<digits> / V<digits>).
Status ValidateAliasName(std::string_view alias);

class RegistryStore {
 public:
  // `database` and `clock` must outlive the store.
  static Result<std::unique_ptr<RegistryStore>> Open(store::Database* database,
                                                     Clock* clock = Clock::Real());

  // Registered models.
  Result<RegisteredModel> CreateRegisteredModel(const CreateRegisteredModelRequest& request);
  Result<RegisteredModel> GetRegisteredModel(const std::string& name);
  // Moves versions, tags, aliases and alias history to `new_name` in one transaction.
  Result<RegisteredModel> RenameRegisteredModel(const std::string& name,
                                                const std::string& new_name);
  Result<RegisteredModel> UpdateRegisteredModel(const std::string& name,
                                                const std::string& description);
  Status DeleteRegisteredModel(const std::string& name);
  Result<Page<RegisteredModel>> SearchRegisteredModels(const SearchRequest& request);
  Status SetRegisteredModelTag(const std::string& name, const Tag& tag);
  // Deleting a key that is not set is not an error (as MLflow).
  Status DeleteRegisteredModelTag(const std::string& name, const std::string& key);
  // Per stage, the highest version; `stages` (case-insensitive) restricts the stages, empty means
  // all four. Ordered by version.
  Result<std::vector<ModelVersion>> GetLatestVersions(const std::string& name,
                                                      const std::vector<std::string>& stages);

  // Model versions.
  Result<ModelVersion> CreateModelVersion(const CreateModelVersionRequest& request);
  Result<ModelVersion> GetModelVersion(const std::string& name, int64_t version);
  Result<ModelVersion> UpdateModelVersion(const std::string& name, int64_t version,
                                          const std::optional<std::string>& description);
  Status DeleteModelVersion(const std::string& name, int64_t version);
  Result<Page<ModelVersion>> SearchModelVersions(const SearchRequest& request);
  Status SetModelVersionTag(const std::string& name, int64_t version, const Tag& tag);
  Status DeleteModelVersionTag(const std::string& name, int64_t version, const std::string& key);
  // `stage` is validated by CanonicalStage. With `archive_existing_versions` (only allowed for
  // Staging and Production), the model's other versions in that stage move to Archived.
  Result<ModelVersion> TransitionModelVersionStage(const std::string& name, int64_t version,
                                                   const std::string& stage,
                                                   bool archive_existing_versions);
  // The version's storage_location when set, else its source.
  Result<std::string> GetModelVersionDownloadUri(const std::string& name, int64_t version);

  // Aliases.
  Status SetRegisteredModelAlias(const std::string& name, const std::string& alias,
                                 int64_t version);
  // Deleting an alias that is not set is not an error (as MLflow); nothing is recorded then.
  Status DeleteRegisteredModelAlias(const std::string& name, const std::string& alias);
  // NotFound "Registered model alias X not found." when the alias is not set.
  Result<ModelVersion> GetModelVersionByAlias(const std::string& name, const std::string& alias);
  // Every change of `alias` on model `name`, oldest first (empty if it never existed).
  Result<std::vector<AliasChange>> GetAliasHistory(const std::string& name,
                                                   const std::string& alias);

 private:
  RegistryStore(store::Database* database, Clock* clock) : database_(database), clock_(clock) {}

  store::Database* database_;  // not owned
  Clock* clock_;               // not owned
};

}  // namespace kiln::registry
