// How the `kiln data` commands reach a dataset repository: a local store (the data layer's
// Repository over the store's database and object folder, in this process) or a remote
// `kiln server` (kiln's data API under /api/kiln/v1/data, data_api.h). Commands are written once
// against DataClient and print the same output for both.
//
// Replies are the data layer's ToJson() shapes (CommitInfo, CommitResult, MergeResult,
// TableDiff, Violation, GcReport, FsckReport), exactly what the HTTP API returns, so --json
// prints the same object against either store. Lists come wrapped: {"commits": [...]},
// {"refs": [...]}, {"tables": [...]} (diff), {"violations": [...]}.
//
// Not thread-safe: one DataClient per command invocation.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "kiln/cli/store_locator.h"
#include "kiln/core/json.h"
#include "kiln/core/status.h"
#include "kiln/data/repository.h"
#include "kiln/table/format.h"

namespace kiln::cli {

// Where the data API lives on a kiln server.
inline constexpr std::string_view kDataApiPrefix = "/api/kiln/v1/data";

// Remote commits send each file in parts of this size (below the server's request body limit),
// so a file of any size can be uploaded and neither side holds more than a part in memory.
inline constexpr size_t kUploadPartBytes = 32ULL << 20;

class DataClient {
 public:
  using Sink = std::function<Status(std::string_view bytes)>;

  virtual ~DataClient() = default;

  // CommitResult JSON. `request.inputs[i].path` are local files (uploaded first when remote);
  // `request.progress` sees bytes committed (or uploaded).
  virtual Result<Json> Commit(const data::CommitRequest& request) = 0;
  // CommitInfo JSON of the commit `ref` names.
  virtual Result<Json> Show(std::string_view ref) = 0;
  // {"commits": [CommitInfo...]}, newest first; limit 0 means all.
  virtual Result<Json> Log(std::string_view ref, size_t limit) = 0;
  // {"refs": [Ref...]}.
  virtual Result<Json> Refs() = 0;
  virtual Status CreateBranch(std::string_view name, std::string_view from_ref) = 0;
  virtual Status DeleteBranch(std::string_view name) = 0;
  virtual Status CreateTag(std::string_view name, std::string_view ref) = 0;
  virtual Status DeleteTag(std::string_view name) = 0;
  // {"a": commit id, "b": commit id, "tables": [TableDiff...]}.
  virtual Result<Json> Diff(std::string_view ref_a, std::string_view ref_b, size_t max_rows) = 0;
  // MergeResult JSON. Conflicts are a result here (listed in "conflicts"), not an error.
  virtual Result<Json> Merge(const data::MergeRequest& request) = 0;
  // CommitInfo JSON of the new commit.
  virtual Result<Json> Revert(std::string_view ref, std::string_view branch,
                              std::string_view author) = 0;
  // The profile JSON stored with a table version.
  virtual Result<Json> Profile(std::string_view ref, std::string_view table) = 0;
  // One table converted to `format`, passed to `write` in pieces.
  virtual Status Export(std::string_view ref, std::string_view table, table::Format format,
                        const Sink& write) = 0;
  // Writes every table and file of `ref` (or only `name`) under `dir` by file name. Returns the
  // commit JSON it wrote from.
  virtual Result<Json> Checkout(std::string_view ref, const std::string& dir,
                                const std::optional<std::string>& name,
                                const data::Progress& progress) = 0;
  // {"ref": commit id, "violations": [Violation...]}. `rules_text` null: the branch's rules.
  // `rules_name` names the rules in YAML error messages.
  virtual Result<Json> Validate(std::string_view ref, const std::optional<std::string>& rules_text,
                                const std::string& rules_name) = 0;
  virtual Result<std::optional<std::string>> GetRules(std::string_view branch) = 0;
  // Empty text detaches the rules.
  virtual Status SetRules(std::string_view branch, const std::string& rules_text) = 0;
  // GcReport JSON.
  virtual Result<Json> Gc(const data::GcOptions& options) = 0;
  // FsckReport JSON.
  virtual Result<Json> Fsck(const data::Progress& progress) = 0;

  // The store's name for messages: the server URL or the database URI, passwords masked.
  virtual std::string DisplayName() const = 0;
};

// Opens the repository at `location`: a local store (database opened and migrated, objects under
// location.objects_root) or a remote server.
Result<std::unique_ptr<DataClient>> OpenDataClient(const StoreLocation& location);

// The Status of a non-2xx reply of the data API (its body is {"error_code", "kiln_code",
// "message"}), as the CLI reports it.
Status StatusFromDataApiError(int http_status, std::string_view body);

}  // namespace kiln::cli
