// The dataset repository: commits of tables and files, branches, tags, merge, revert, diff,
// checkout and export, validation, profiles, garbage collection and fsck.
//
// Metadata lives in the store's database (schema v3: data_commits, data_entries, data_refs,
// data_objects, data_rules); bytes live in the object store. A commit becomes visible in one
// database transaction that runs only after every object it needs is durable (ObjectStore::Sync),
// so a reader or a crash sees the whole commit or none of it. Branch and tag creation write one
// row. Commit ids are the SHA-256 of the commit's canonical JSON (parents, entries' manifests,
// message, author, time).
//
// References (Resolve):
//   a branch or tag name           main, v1.0
//   a commit id or unique prefix   3fa2c1 (at least 4 hex digits)
//   ancestors                      main~2 (first parents), main^ (= main~1)
//   a time                         main@{2026-11-01} or main@{2026-11-01T12:00:00Z}: the newest
//                                  commit on the branch's first-parent history made at or before
//                                  that moment (a bare date means the end of that day, UTC)
//
// Concurrency: any number of readers. Writers (commit, merge, revert, branch moves, gc) in this
// or other processes are serialized by an exclusive lock file in the object folder; a branch
// move also checks in its transaction that the branch still points where the writer started
// (else Conflict), so two servers sharing PostgreSQL cannot lose a commit either.
//
// Lineage roots for gc: every commit reachable from a branch or tag, every commit named by a
// run's tag "kiln.data.commit" or by a run input dataset's digest, and every commit younger
// than the retention window.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/json.h"
#include "kiln/core/status.h"
#include "kiln/data/diff.h"
#include "kiln/data/merge.h"
#include "kiln/data/profile.h"
#include "kiln/data/table_version.h"
#include "kiln/data/validation.h"
#include "kiln/objects/chunker.h"
#include "kiln/store/database.h"

namespace kiln::data {

struct CommitInfo {
  std::string id;
  std::vector<std::string> parents;
  std::string message;
  std::string author;
  int64_t created_ms = 0;
  std::vector<TableVersion> entries;  // sorted by name
  const TableVersion* Find(std::string_view name) const;
  Json ToJson() const;  // entries without their chunk lists
};

struct Ref {
  std::string name;
  std::string kind;  // "branch" or "tag"
  std::string commit_id;
  int64_t updated_ms = 0;
  Json ToJson() const;
};

struct CommitInput {
  std::string path;                  // a file on disk
  std::optional<std::string> table;  // --table: make this file a version of that existing table
  std::optional<std::string> key;    // --key: the table's key column (kept for later versions)
};

// Progress of long work (bytes done of total), for a terminal bar.
using Progress = std::function<void(uint64_t done, uint64_t total)>;

struct CommitRequest {
  std::string branch = "main";
  std::string message;
  std::string author;
  std::vector<CommitInput> inputs;
  // Tables and files of the parent commit not named by an input are kept (like `git add`);
  // these names are removed.
  std::vector<std::string> remove;
  Progress progress;
};

struct CommitStats {
  std::string name;
  uint64_t bytes = 0;          // the file's size
  uint64_t rows = 0;
  uint64_t chunks = 0;
  uint64_t chunks_new = 0;     // not already stored
  // Table chunks parsed, checked and profiled whole. The others either were the same bytes at the
  // same line in the previous version, whose saved chunk profile was merged instead, or are
  // counted in chunks_profiled_from_edits.
  uint64_t chunks_parsed = 0;
  // Table chunks with lines replaced in place: the previous chunk's saved profile with only the
  // replaced rows taken back and the new ones added (checked like any row).
  uint64_t chunks_profiled_from_edits = 0;
  uint64_t stored_bytes = 0;   // bytes the new chunks took on disk
  Json ToJson() const;
};

struct CommitResult {
  CommitInfo commit;
  std::vector<CommitStats> stats;  // one per input
  bool unchanged = false;          // the inputs matched the parent exactly: no commit was made
  Json ToJson() const;
};

struct MergeRequest {
  std::string source;  // a REF
  std::string into = "main";
  MergeStrategy strategy = MergeStrategy::kNone;
  std::string message;  // default "merge SOURCE into INTO"
  std::string author;
};

struct MergeResult {
  std::optional<CommitInfo> commit;      // absent when there were conflicts (nothing changed)
  std::vector<MergeConflict> conflicts;
  bool fast_forward = false;
  bool up_to_date = false;
  Json ToJson() const;
};

struct GcOptions {
  int64_t retention_ms = 7LL * 24 * 3600 * 1000;  // unreferenced commits and objects younger stay
  bool dry_run = false;
};

struct GcReport {
  int64_t commits_removed = 0;
  int64_t objects_removed = 0;
  uint64_t bytes_freed = 0;
  int64_t objects_kept = 0;
  Json ToJson() const;
};

struct FsckProblem {
  std::string what;     // "object", "commit", "ref", "entry"
  std::string id;
  std::string problem;  // "missing", "hash mismatch ...", "parent ... missing"
  Json ToJson() const;
};

struct FsckReport {
  int64_t commits_checked = 0;
  int64_t objects_checked = 0;
  std::vector<FsckProblem> problems;
  int64_t unreferenced_objects = 0;  // files no metadata names (from crashed writes; gc removes)
  Json ToJson() const;
};

struct RepositoryOptions {
  int threads = 0;                            // 0: one per core
  uint64_t memory_budget = 256ULL << 20;      // bytes of chunks in flight during commit/read
  objects::ChunkerOptions chunker;
  int zstd_level = 1;
  int max_delta_depth = 8;
  ProfileOptions profile;
  // Profile chunks of all-numeric CSV/TSV tables straight from their bytes (the same profile as
  // the row reader's path, which takes every chunk the fused parse does not); off only to
  // compare the two.
  bool fused_numeric_parse = true;
};

class Repository {
 public:
  virtual ~Repository() = default;

  // `database` must outlive the repository. `objects_root`: the object folder (.kiln/objects).
  static Result<std::unique_ptr<Repository>> Open(store::Database* database,
                                                  const std::string& objects_root,
                                                  RepositoryOptions options = {});

  // Errors: InvalidArgument for malformed input (naming file, line, column), NotFound for a
  // missing file or --table, ValidationFailed when the branch's rules refuse the result (the
  // message lists the violations), Conflict if the branch moved underneath.
  virtual Result<CommitResult> Commit(const CommitRequest& request) = 0;
  virtual Result<MergeResult> Merge(const MergeRequest& request) = 0;
  // A new commit on `branch` that undoes what `ref` changed relative to its first parent.
  virtual Result<CommitInfo> Revert(std::string_view ref, std::string_view branch,
                                    std::string_view author) = 0;

  virtual Result<CommitInfo> Resolve(std::string_view ref) = 0;
  // First-parent history from `ref`, newest first.
  virtual Result<std::vector<CommitInfo>> Log(std::string_view ref, size_t limit) = 0;
  virtual Result<std::vector<Ref>> ListRefs() = 0;
  virtual Status CreateBranch(std::string_view name, std::string_view from_ref) = 0;
  virtual Status DeleteBranch(std::string_view name) = 0;
  virtual Status CreateTag(std::string_view name, std::string_view ref) = 0;
  virtual Status DeleteTag(std::string_view name) = 0;

  virtual Result<TableVersion> GetTable(std::string_view ref, std::string_view name) = 0;
  // Every table and file of `ref` under `dir` by file_name (or only `name`).
  virtual Status Checkout(std::string_view ref, const std::string& dir,
                          std::optional<std::string> name, const Progress& progress) = 0;
  // One table converted to `format`, streamed to `write`.
  virtual Status Export(std::string_view ref, std::string_view table, table::Format format,
                        const std::function<Status(std::string_view)>& write) = 0;
  // A file's exact bytes, streamed.
  virtual Status ReadFile(std::string_view ref, std::string_view name,
                          const std::function<Status(std::string_view)>& write) = 0;

  virtual Result<std::vector<TableDiff>> Diff(std::string_view ref_a, std::string_view ref_b,
                                              const DiffOptions& options) = 0;
  virtual Result<Json> Profile(std::string_view ref, std::string_view table) = 0;

  // Validates every table of `ref` against `rules`, or the rules attached to the branch `ref`
  // names when rules is null (InvalidArgument if `ref` is not a branch or it has no rules).
  virtual Result<std::vector<Violation>> Validate(std::string_view ref, const Rules* rules) = 0;
  // Attaches rules to a branch (empty text detaches). Later commits and merges into the branch
  // that break them are refused.
  virtual Status SetBranchRules(std::string_view branch, const std::string& rules_text) = 0;
  virtual Result<std::optional<std::string>> GetBranchRules(std::string_view branch) = 0;

  virtual Result<GcReport> Gc(const GcOptions& options) = 0;
  virtual Result<FsckReport> Fsck(const Progress& progress) = 0;

  virtual ChunkLoader& loader() = 0;
};

}  // namespace kiln::data
