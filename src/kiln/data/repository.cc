#include "kiln/data/repository.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <future>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "kiln/core/clock.h"
#include "kiln/core/file_util.h"
#include "kiln/core/hash.h"
#include "kiln/data/ingest.h"
#include "kiln/data/repository_internal.h"
#include "kiln/table/inference.h"
#include "kiln/table/writer.h"

namespace kiln::data {

// ---- JSON forms ------------------------------------------------------------------------------

namespace {

Json TableVersionJson(const TableVersion& entry) {
  Json json = {{"name", entry.name},
               {"file_name", entry.file_name},
               {"format", entry.format ? std::string(table::FormatName(*entry.format)) : "bytes"},
               {"rows", entry.rows},
               {"bytes", entry.bytes},
               {"manifest", entry.manifest.Hex()}};
  if (entry.is_table()) json["schema"] = entry.schema.ToJson();
  if (entry.key) json["key"] = *entry.key;
  if (entry.profile) json["profile"] = entry.profile->Hex();
  if (!entry.chunks.empty()) json["chunks"] = entry.chunks.size();
  return json;
}

}  // namespace

const TableVersion* CommitInfo::Find(std::string_view name) const {
  for (const TableVersion& entry : entries) {
    if (entry.name == name) return &entry;
  }
  return nullptr;
}

Json CommitInfo::ToJson() const {
  Json json = {{"id", id},
               {"parents", parents},
               {"message", message},
               {"author", author},
               {"created_ms", created_ms},
               {"entries", Json::array()}};
  for (const TableVersion& entry : entries) json["entries"].push_back(TableVersionJson(entry));
  return json;
}

Json Ref::ToJson() const {
  return {{"name", name}, {"kind", kind}, {"commit_id", commit_id}, {"updated_ms", updated_ms}};
}

Json CommitStats::ToJson() const {
  return {{"name", name},
          {"bytes", bytes},
          {"rows", rows},
          {"chunks", chunks},
          {"chunks_new", chunks_new},
          {"chunks_parsed", chunks_parsed},
          {"chunks_profiled_from_edits", chunks_profiled_from_edits},
          {"stored_bytes", stored_bytes}};
}

Json CommitResult::ToJson() const {
  Json json = {{"commit", commit.ToJson()}, {"unchanged", unchanged}, {"stats", Json::array()}};
  for (const CommitStats& stat : stats) json["stats"].push_back(stat.ToJson());
  return json;
}

Json MergeResult::ToJson() const {
  Json json = {{"fast_forward", fast_forward},
               {"up_to_date", up_to_date},
               {"conflicts", Json::array()}};
  json["commit"] = commit ? commit->ToJson() : Json(nullptr);
  for (const MergeConflict& conflict : conflicts) json["conflicts"].push_back(conflict.ToJson());
  return json;
}

Json GcReport::ToJson() const {
  return {{"commits_removed", commits_removed},
          {"objects_removed", objects_removed},
          {"bytes_freed", bytes_freed},
          {"objects_kept", objects_kept}};
}

Json FsckProblem::ToJson() const { return {{"what", what}, {"id", id}, {"problem", problem}}; }

Json FsckReport::ToJson() const {
  Json json = {{"commits_checked", commits_checked},
               {"objects_checked", objects_checked},
               {"unreferenced_objects", unreferenced_objects},
               {"ok", problems.empty()},
               {"problems", Json::array()}};
  for (const FsckProblem& problem : problems) json["problems"].push_back(problem.ToJson());
  return json;
}

// ---- internal helpers shared with maintenance.cc --------------------------------------------

namespace internal {

Result<std::unique_ptr<WriteLock>> WriteLock::Acquire(const std::string& objects_root) {
  std::string path = objects_root + "/.lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("cannot open lock file '" + path + "': " + std::strerror(errno));
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    int error = errno;
    ::close(fd);
    return IoError("cannot lock '" + path + "': " + std::strerror(error));
  }
  return std::unique_ptr<WriteLock>(new WriteLock(fd));
}

WriteLock::~WriteLock() { ::close(fd_); }

namespace {

// Feeds a file to `ingest` and finishes it. A regular file is mapped and its chunks borrow the
// mapping, so its bytes are never copied on the way in; windows already cut are dropped from
// the resident set as the commit moves on, which keeps it small whatever the file's size (a page
// dropped too early is only read again). Anything else (a pipe) is read in blocks.
Result<TableVersion> IngestFile(const std::string& path, Ingest& ingest,
                                const std::function<void(uint64_t bytes)>& advanced) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError("cannot open '" + path + "': " + std::strerror(errno));
  struct stat info;
  Status status;
  if (::fstat(fd, &info) == 0 && S_ISREG(info.st_mode) && info.st_size > 0) {
    const size_t size = static_cast<size_t>(info.st_size);
    void* mapped = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapped != MAP_FAILED) {
      ::close(fd);
      char* bytes = static_cast<char*>(mapped);
      constexpr size_t kWindow = 32 << 20;  // a multiple of the page size
      for (size_t at = 0; at < size && status.ok(); at += kWindow) {
        const size_t length = std::min(kWindow, size - at);
#ifdef MADV_POPULATE_READ
        // One call maps the window's pages, instead of a fault per page in each thread.
        ::madvise(bytes + at, length, MADV_POPULATE_READ);
#endif
        status = ingest.AppendMapped(std::string_view(bytes + at, length));
        // The chunks in flight are at most a few megabytes behind: the window before this one
        // is done with.
        if (at >= kWindow) ::madvise(bytes + at - kWindow, kWindow, MADV_DONTNEED);
        if (status.ok()) advanced(length);
      }
      Result<TableVersion> version = status.ok() ? ingest.Finish() : Result<TableVersion>(status);
      ingest.Drain();  // after an error, chunks may still be reading the mapping
      ::munmap(mapped, size);
      return version;
    }
  }
  std::string block(8 << 20, '\0');
  while (status.ok()) {
    ssize_t got = ::read(fd, block.data(), block.size());
    if (got < 0) {
      if (errno == EINTR) continue;
      status = IoError("cannot read '" + path + "': " + std::strerror(errno));
      break;
    }
    if (got == 0) break;
    status = ingest.Append(std::string_view(block.data(), static_cast<size_t>(got)));
    if (status.ok()) advanced(static_cast<uint64_t>(got));
  }
  ::close(fd);
  KILN_RETURN_IF_ERROR(status);
  return ingest.Finish();
}

}  // namespace

Status LoadManifest(objects::ObjectStore& objects, TableVersion* version) {
  KILN_ASSIGN_OR_RETURN(std::string text, objects.Get(version->manifest));
  auto parsed = ParseJson(text);
  if (!parsed.ok()) {
    return Internal("manifest " + version->manifest.Hex() + " is not JSON: " +
                    parsed.status().message());
  }
  const Json& manifest = *parsed;
  if (!manifest.is_object() || !manifest.contains("chunks") || !manifest["chunks"].is_array()) {
    return Internal("manifest " + version->manifest.Hex() + " has no chunk list");
  }
  version->chunks.clear();
  version->chunks.reserve(manifest["chunks"].size());
  for (const Json& chunk : manifest["chunks"]) {
    ChunkRef ref;
    if (!chunk.is_object() || !chunk.contains("id") || !chunk["id"].is_string() ||
        !Digest::FromHex(chunk["id"].get<std::string>(), &ref.id)) {
      return Internal("manifest " + version->manifest.Hex() + " has a malformed chunk");
    }
    ref.size = chunk.value("size", uint64_t{0});
    ref.rows = chunk.value("rows", uint64_t{0});
    ref.first_line = chunk.value("first_line", int64_t{1});
    ref.anchor = chunk.value("anchor", uint64_t{0});
    if (chunk.contains("stats")) {
      Digest stats;
      if (!chunk["stats"].is_string() || !Digest::FromHex(chunk["stats"].get<std::string>(), &stats)) {
        return Internal("manifest " + version->manifest.Hex() + " has a malformed chunk profile id");
      }
      ref.stats = stats;
    }
    version->chunks.push_back(ref);
  }
  return Status::Ok();
}

namespace {

std::vector<std::string> SplitParents(const std::string& text) {
  std::vector<std::string> parents;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) parents.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return parents;
}

}  // namespace

Result<std::optional<CommitInfo>> LoadCommit(store::Transaction& tx, const std::string& id) {
  KILN_ASSIGN_OR_RETURN(
      store::Rows rows,
      tx.Query("SELECT parents, message, author, created_ms FROM data_commits WHERE commit_id = ?",
               {id}));
  if (rows.empty()) return std::optional<CommitInfo>();
  CommitInfo commit;
  commit.id = id;
  commit.parents = SplitParents(rows.Text(0, 0));
  commit.message = rows.Text(0, 1);
  commit.author = rows.Text(0, 2);
  commit.created_ms = rows.Int(0, 3);
  KILN_ASSIGN_OR_RETURN(
      store::Rows entries,
      tx.Query("SELECT name, file_name, format, schema_json, key_column, row_count, byte_count, "
               "manifest_id, profile_id FROM data_entries WHERE commit_id = ? ORDER BY name",
               {id}));
  for (size_t r = 0; r < entries.size(); ++r) {
    TableVersion entry;
    entry.name = entries.Text(r, 0);
    entry.file_name = entries.Text(r, 1);
    std::string format = entries.Text(r, 2);
    if (format != "bytes") {
      entry.format = table::FormatFromName(format);
      if (!entry.format) return Internal("commit " + id + ": unknown format '" + format + "'");
      auto schema_json = ParseJson(entries.Text(r, 3));
      if (!schema_json.ok()) return Internal("commit " + id + ": unreadable schema");
      KILN_ASSIGN_OR_RETURN(entry.schema, table::Schema::FromJson(*schema_json));
    }
    entry.key = entries.OptText(r, 4);
    entry.rows = static_cast<uint64_t>(entries.Int(r, 5));
    entry.bytes = static_cast<uint64_t>(entries.Int(r, 6));
    if (!Digest::FromHex(entries.Text(r, 7), &entry.manifest)) {
      return Internal("commit " + id + ": malformed manifest id");
    }
    if (std::optional<std::string> profile = entries.OptText(r, 8)) {
      Digest profile_id;
      if (!Digest::FromHex(*profile, &profile_id)) {
        return Internal("commit " + id + ": malformed profile id");
      }
      entry.profile = profile_id;
    }
    commit.entries.push_back(std::move(entry));
  }
  return std::optional<CommitInfo>(std::move(commit));
}

}  // namespace internal

namespace {

using internal::LoadCommit;
using internal::LoadManifest;
using internal::StoreChunkLoader;
using internal::WriteLock;

std::string JoinParents(const std::vector<std::string>& parents) {
  std::string out;
  for (const std::string& parent : parents) {
    if (!out.empty()) out += ' ';
    out += parent;
  }
  return out;
}

// The commit id: SHA-256 of the canonical JSON of what the commit says.
std::string CommitId(const CommitInfo& commit) {
  Json canonical = {{"parents", commit.parents},
                    {"message", commit.message},
                    {"author", commit.author},
                    {"created_ms", commit.created_ms},
                    {"entries", Json::array()}};
  for (const TableVersion& entry : commit.entries) {
    Json json = {{"name", entry.name},
                 {"file_name", entry.file_name},
                 {"format", entry.format ? std::string(table::FormatName(*entry.format)) : "bytes"},
                 {"manifest", entry.manifest.Hex()},
                 {"rows", entry.rows},
                 {"bytes", entry.bytes}};
    if (entry.is_table()) json["schema"] = entry.schema.ToJson();
    if (entry.key) json["key"] = *entry.key;
    if (entry.profile) json["profile"] = entry.profile->Hex();
    canonical["entries"].push_back(std::move(json));
  }
  return Sha256Hex(canonical.dump());
}

bool SameEntry(const TableVersion& a, const TableVersion& b) {
  return a.name == b.name && a.file_name == b.file_name && a.manifest == b.manifest &&
         a.key == b.key && a.format == b.format && a.schema == b.schema;
}

bool SameTree(const std::vector<TableVersion>& a, const std::vector<TableVersion>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!SameEntry(a[i], b[i])) return false;
  }
  return true;
}

// Branch and tag names: letters, digits, '.', '_', '-', '/'; not starting with '-' or '.', no
// "..", and not something Resolve would read as an operator.
Status CheckRefName(std::string_view kind, std::string_view name) {
  bool ok = !name.empty() && name.size() <= 200 && name.front() != '-' && name.front() != '.' &&
            name.back() != '/' && name.find("..") == std::string_view::npos;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ||
          c == '/')) {
      ok = false;
    }
  }
  if (!ok) {
    return InvalidArgument("invalid " + std::string(kind) + " name '" + std::string(name) +
                           "': use letters, digits, '.', '_', '-' and '/'");
  }
  return Status::Ok();
}

Status CheckEntryPath(std::string_view path) {
  if (!IsSafeEntryPath(path)) return InvalidArgument("invalid file name '" + std::string(path) + "'");
  return Status::Ok();
}

std::string Stem(const std::string& file_name) {
  size_t dot = file_name.rfind('.');
  size_t slash = file_name.rfind('/');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash) || dot == 0) {
    return file_name;
  }
  return file_name.substr(0, dot);
}

std::string Extension(const std::string& file_name) {
  size_t dot = file_name.rfind('.');
  size_t slash = file_name.rfind('/');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  return file_name.substr(dot);
}

Result<int64_t> ParseRefTime(std::string_view text) {
  auto millis = table::ParseTimestampMillis(text);
  if (!millis.ok()) {
    return InvalidArgument("invalid time '" + std::string(text) +
                           "' in reference: use 2026-11-01 or 2026-11-01T12:00:00Z");
  }
  // A bare date means the whole day: the state at its end.
  if (text.size() == 10) return *millis + 24LL * 3600 * 1000 - 1;
  return *millis;
}

class RepositoryImpl : public Repository {
 public:
  RepositoryImpl(store::Database* database, std::unique_ptr<objects::ObjectStore> objects,
                 RepositoryOptions options)
      : database_(database),
        objects_(std::move(objects)),
        options_(options),
        pool_(options.threads),
        loader_(objects_.get()) {}

  Result<CommitResult> Commit(const CommitRequest& request) override;
  Result<MergeResult> Merge(const MergeRequest& request) override;
  Result<CommitInfo> Revert(std::string_view ref, std::string_view branch,
                            std::string_view author) override;

  Result<CommitInfo> Resolve(std::string_view ref) override;
  Result<std::vector<CommitInfo>> Log(std::string_view ref, size_t limit) override;
  Result<std::vector<Ref>> ListRefs() override;
  Status CreateBranch(std::string_view name, std::string_view from_ref) override {
    return CreateRef("branch", name, from_ref);
  }
  Status DeleteBranch(std::string_view name) override { return DeleteRef("branch", name); }
  Status CreateTag(std::string_view name, std::string_view ref) override {
    return CreateRef("tag", name, ref);
  }
  Status DeleteTag(std::string_view name) override { return DeleteRef("tag", name); }

  Result<TableVersion> GetTable(std::string_view ref, std::string_view name) override;
  Status Checkout(std::string_view ref, const std::string& dir, std::optional<std::string> name,
                  const Progress& progress) override;
  Status Export(std::string_view ref, std::string_view table, table::Format format,
                const std::function<Status(std::string_view)>& write) override;
  Status ReadFile(std::string_view ref, std::string_view name,
                  const std::function<Status(std::string_view)>& write) override;

  Result<std::vector<TableDiff>> Diff(std::string_view ref_a, std::string_view ref_b,
                                      const DiffOptions& options) override;
  Result<Json> Profile(std::string_view ref, std::string_view table) override;
  Result<std::vector<Violation>> Validate(std::string_view ref, const Rules* rules) override;
  Status SetBranchRules(std::string_view branch, const std::string& rules_text) override;
  Result<std::optional<std::string>> GetBranchRules(std::string_view branch) override;

  Result<GcReport> Gc(const GcOptions& options) override {
    KILN_ASSIGN_OR_RETURN(std::unique_ptr<WriteLock> lock, WriteLock::Acquire(objects_->root()));
    return internal::CollectGarbage(*database_, *objects_, options, Clock::Real()->NowMillis());
  }
  Result<FsckReport> Fsck(const Progress& progress) override {
    return internal::CheckRepository(*database_, *objects_, pool_, progress);
  }

  ChunkLoader& loader() override { return loader_; }

 private:
  Result<std::optional<std::string>> RefTarget(std::string_view name, std::string* kind);
  Result<CommitInfo> LoadCommitOrError(const std::string& id);
  Result<std::string> ResolveBase(std::string_view base);
  Status LoadChunks(CommitInfo& commit);
  Status CreateRef(std::string_view kind, std::string_view name, std::string_view from_ref);
  Status DeleteRef(std::string_view kind, std::string_view name);
  Result<bool> IsAncestor(const std::string& ancestor, const std::string& descendant);
  Result<std::optional<std::string>> MergeBase(const std::string& a, const std::string& b);
  // Refuses `entries` for `branch` if the branch has rules they break (ValidationFailed).
  Status CheckBranchRules(std::string_view branch, const std::vector<TableVersion>& entries);
  // Syncs the objects, writes the commit and moves `branch` from `expected_head` (nullopt: the
  // branch must not exist yet) to it, in one transaction.
  Result<CommitInfo> WriteCommit(CommitInfo commit, const std::string& branch,
                                 const std::optional<std::string>& expected_head,
                                 ObjectIndex& index, std::string_view fault_prefix);
  Status MoveBranch(const std::string& branch, const std::string& from, const std::string& to);
  // Streams the chunks of `version` in order, decoding ahead on the pool.
  Status StreamChunks(const TableVersion& version,
                      const std::function<Status(size_t index, std::string_view bytes)>& write);

  store::Database* database_;
  std::unique_ptr<objects::ObjectStore> objects_;
  RepositoryOptions options_;
  ThreadPool pool_;
  StoreChunkLoader loader_;
};

// ---- references ------------------------------------------------------------------------------

Result<std::optional<std::string>> RepositoryImpl::RefTarget(std::string_view name,
                                                             std::string* kind) {
  std::optional<std::string> target;
  KILN_RETURN_IF_ERROR(database_->Read([&](store::Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(
        store::Rows rows,
        tx.Query("SELECT commit_id, kind FROM data_refs WHERE name = ?", {std::string(name)}));
    if (!rows.empty()) {
      target = rows.Text(0, 0);
      if (kind != nullptr) *kind = rows.Text(0, 1);
    }
    return Status::Ok();
  }));
  return target;
}

Result<CommitInfo> RepositoryImpl::LoadCommitOrError(const std::string& id) {
  std::optional<CommitInfo> commit;
  KILN_RETURN_IF_ERROR(database_->Read([&](store::Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(commit, LoadCommit(tx, id));
    return Status::Ok();
  }));
  if (!commit) return NotFound("commit '" + id + "' does not exist");
  return std::move(*commit);
}

Result<std::string> RepositoryImpl::ResolveBase(std::string_view base) {
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> target, RefTarget(base, nullptr));
  if (target) return *target;
  bool hex = base.size() >= 4 && base.size() <= 64 &&
             std::all_of(base.begin(), base.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
             });
  if (hex) {
    std::vector<std::string> matches;
    KILN_RETURN_IF_ERROR(database_->Read([&](store::Transaction& tx) -> Status {
      KILN_ASSIGN_OR_RETURN(
          store::Rows rows,
          tx.Query("SELECT commit_id FROM data_commits WHERE commit_id >= ? AND commit_id < ? "
                   "ORDER BY commit_id LIMIT 2",
                   {std::string(base), std::string(base) + "g"}));
      for (size_t r = 0; r < rows.size(); ++r) matches.push_back(rows.Text(r, 0));
      return Status::Ok();
    }));
    if (matches.size() == 1) return matches[0];
    if (matches.size() > 1) {
      return InvalidArgument("commit prefix '" + std::string(base) +
                             "' is ambiguous: give more digits");
    }
  }
  return NotFound("no branch, tag or commit named '" + std::string(base) + "'");
}

Result<CommitInfo> RepositoryImpl::Resolve(std::string_view ref) {
  if (ref.empty()) return InvalidArgument("empty reference");
  size_t base_end = ref.find_first_of("~^@");
  KILN_ASSIGN_OR_RETURN(std::string id, ResolveBase(ref.substr(0, base_end)));
  size_t at = base_end == std::string_view::npos ? ref.size() : base_end;
  while (at < ref.size()) {
    char op = ref[at];
    if (op == '^' || op == '~') {
      ++at;
      size_t digits_end = at;
      while (digits_end < ref.size() && std::isdigit(static_cast<unsigned char>(ref[digits_end]))) {
        ++digits_end;
      }
      int64_t steps = 1;
      if (digits_end > at) {
        if (digits_end - at > 9) return InvalidArgument("invalid reference '" + std::string(ref) + "'");
        steps = std::stoll(std::string(ref.substr(at, digits_end - at)));
      }
      if (op == '^' && digits_end > at && steps != 1) {
        // ^N picks the Nth parent.
        KILN_ASSIGN_OR_RETURN(CommitInfo commit, LoadCommitOrError(id));
        if (steps < 1 || static_cast<size_t>(steps) > commit.parents.size()) {
          return NotFound("'" + std::string(ref) + "': commit " + id.substr(0, 12) + " has " +
                          std::to_string(commit.parents.size()) + " parent(s)");
        }
        id = commit.parents[steps - 1];
      } else {
        for (int64_t i = 0; i < steps; ++i) {
          KILN_ASSIGN_OR_RETURN(CommitInfo commit, LoadCommitOrError(id));
          if (commit.parents.empty()) {
            return NotFound("'" + std::string(ref) + "' goes back past the first commit");
          }
          id = commit.parents[0];
        }
      }
      at = digits_end;
    } else if (op == '@' && at + 1 < ref.size() && ref[at + 1] == '{') {
      size_t close = ref.find('}', at);
      if (close == std::string_view::npos) {
        return InvalidArgument("invalid reference '" + std::string(ref) + "': missing '}'");
      }
      KILN_ASSIGN_OR_RETURN(int64_t when, ParseRefTime(ref.substr(at + 2, close - at - 2)));
      std::string walk = id;
      while (true) {
        KILN_ASSIGN_OR_RETURN(CommitInfo commit, LoadCommitOrError(walk));
        if (commit.created_ms <= when) break;
        if (commit.parents.empty()) {
          return NotFound("no commit in '" + std::string(ref.substr(0, at)) + "' at or before " +
                          std::string(ref.substr(at + 2, close - at - 2)));
        }
        walk = commit.parents[0];
      }
      id = walk;
      at = close + 1;
    } else {
      return InvalidArgument("invalid reference '" + std::string(ref) + "'");
    }
  }
  return LoadCommitOrError(id);
}

Result<std::vector<CommitInfo>> RepositoryImpl::Log(std::string_view ref, size_t limit) {
  std::vector<CommitInfo> out;
  auto head = Resolve(ref);
  if (!head.ok()) {
    // An empty repository has an empty history on main.
    if (head.status().code() == StatusCode::kNotFound && ref == "main") {
      KILN_ASSIGN_OR_RETURN(std::vector<Ref> refs, ListRefs());
      if (refs.empty()) return out;
    }
    return head.status();
  }
  out.push_back(std::move(*head));
  while (out.size() < limit && !out.back().parents.empty()) {
    KILN_ASSIGN_OR_RETURN(CommitInfo parent, LoadCommitOrError(out.back().parents[0]));
    out.push_back(std::move(parent));
  }
  return out;
}

Result<std::vector<Ref>> RepositoryImpl::ListRefs() {
  std::vector<Ref> refs;
  KILN_RETURN_IF_ERROR(database_->Read([&](store::Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(
        store::Rows rows,
        tx.Query("SELECT name, kind, commit_id, updated_ms FROM data_refs ORDER BY kind, name"));
    for (size_t r = 0; r < rows.size(); ++r) {
      refs.push_back(Ref{rows.Text(r, 0), rows.Text(r, 1), rows.Text(r, 2), rows.Int(r, 3)});
    }
    return Status::Ok();
  }));
  return refs;
}

Status RepositoryImpl::CreateRef(std::string_view kind, std::string_view name,
                                 std::string_view from_ref) {
  KILN_RETURN_IF_ERROR(CheckRefName(kind, name));
  KILN_ASSIGN_OR_RETURN(CommitInfo target, Resolve(from_ref));
  bool created = false;
  KILN_RETURN_IF_ERROR(database_->Write([&](store::Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(
        int64_t changed,
        tx.Exec("INSERT INTO data_refs (name, kind, commit_id, updated_ms) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO NOTHING",
                {std::string(name), std::string(kind), target.id, Clock::Real()->NowMillis()}));
    created = changed == 1;
    return Status::Ok();
  }));
  if (!created) {
    return AlreadyExists("a branch or tag named '" + std::string(name) + "' already exists");
  }
  return Status::Ok();
}

Status RepositoryImpl::DeleteRef(std::string_view kind, std::string_view name) {
  bool deleted = false;
  KILN_RETURN_IF_ERROR(database_->Write([&](store::Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(int64_t changed,
                          tx.Exec("DELETE FROM data_refs WHERE name = ? AND kind = ?",
                                  {std::string(name), std::string(kind)}));
    deleted = changed == 1;
    return Status::Ok();
  }));
  if (!deleted) return NotFound(std::string(kind) + " '" + std::string(name) + "' does not exist");
  return Status::Ok();
}

Status RepositoryImpl::LoadChunks(CommitInfo& commit) {
  for (TableVersion& entry : commit.entries) KILN_RETURN_IF_ERROR(LoadManifest(*objects_, &entry));
  return Status::Ok();
}

Result<bool> RepositoryImpl::IsAncestor(const std::string& ancestor,
                                        const std::string& descendant) {
  std::deque<std::string> queue{descendant};
  std::unordered_set<std::string> seen{descendant};
  while (!queue.empty()) {
    std::string id = std::move(queue.front());
    queue.pop_front();
    if (id == ancestor) return true;
    KILN_ASSIGN_OR_RETURN(CommitInfo commit, LoadCommitOrError(id));
    for (const std::string& parent : commit.parents) {
      if (seen.insert(parent).second) queue.push_back(parent);
    }
  }
  return false;
}

Result<std::optional<std::string>> RepositoryImpl::MergeBase(const std::string& a,
                                                             const std::string& b) {
  std::unordered_set<std::string> ancestors_of_a{a};
  std::deque<std::string> queue{a};
  while (!queue.empty()) {
    std::string id = std::move(queue.front());
    queue.pop_front();
    KILN_ASSIGN_OR_RETURN(CommitInfo commit, LoadCommitOrError(id));
    for (const std::string& parent : commit.parents) {
      if (ancestors_of_a.insert(parent).second) queue.push_back(parent);
    }
  }
  std::unordered_set<std::string> seen{b};
  queue = {b};
  while (!queue.empty()) {
    std::string id = std::move(queue.front());
    queue.pop_front();
    if (ancestors_of_a.count(id) != 0) return std::optional<std::string>(id);
    KILN_ASSIGN_OR_RETURN(CommitInfo commit, LoadCommitOrError(id));
    for (const std::string& parent : commit.parents) {
      if (seen.insert(parent).second) queue.push_back(parent);
    }
  }
  return std::optional<std::string>();
}

// ---- writing commits -------------------------------------------------------------------------

Status RepositoryImpl::CheckBranchRules(std::string_view branch,
                                        const std::vector<TableVersion>& entries) {
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> text, GetBranchRules(branch));
  if (!text) return Status::Ok();
  KILN_ASSIGN_OR_RETURN(Rules rules, Rules::Parse(*text, "rules of branch " + std::string(branch)));
  std::vector<Violation> violations;
  for (const TableVersion& entry : entries) {
    if (!entry.is_table() || !rules.AppliesTo(entry.name) || !entry.profile) continue;
    KILN_ASSIGN_OR_RETURN(std::string profile_text, objects_->Get(*entry.profile));
    KILN_ASSIGN_OR_RETURN(Json profile, ParseJson(profile_text));
    ReferenceProfiles references = [this](const std::string& ref, const std::string& table)
        -> Result<std::optional<Json>> {
      KILN_ASSIGN_OR_RETURN(CommitInfo commit, Resolve(ref));
      const TableVersion* found = commit.Find(table);
      if (found == nullptr || !found->profile) return std::optional<Json>();
      KILN_ASSIGN_OR_RETURN(std::string text, objects_->Get(*found->profile));
      KILN_ASSIGN_OR_RETURN(Json json, ParseJson(text));
      return std::optional<Json>(std::move(json));
    };
    KILN_ASSIGN_OR_RETURN(std::vector<Violation> found,
                          data::Validate(rules, entry, profile, loader_, references));
    violations.insert(violations.end(), found.begin(), found.end());
  }
  if (violations.empty()) return Status::Ok();
  std::string message = "branch '" + std::string(branch) + "' has rules this change breaks:";
  for (const Violation& violation : violations) {
    message += "\n  " + violation.table + (violation.column.empty() ? "" : "." + violation.column) +
               ": " + violation.rule + " expected " + violation.expected + ", observed " +
               violation.observed;
  }
  return Status(StatusCode::kValidationFailed, message);
}

Result<CommitInfo> RepositoryImpl::WriteCommit(CommitInfo commit, const std::string& branch,
                                               const std::optional<std::string>& expected_head,
                                               ObjectIndex& index, std::string_view fault_prefix) {
  // Every object the commit needs must be durable before the commit that names it is.
  KILN_RETURN_IF_ERROR(objects_->Sync());
  std::vector<NewObject> pending = index.TakePending();
  commit.created_ms = Clock::Real()->NowMillis();
  if (!commit.parents.empty()) {
    // Keep history monotonic even if the clock steps back.
    KILN_ASSIGN_OR_RETURN(CommitInfo parent, LoadCommitOrError(commit.parents[0]));
    commit.created_ms = std::max(commit.created_ms, parent.created_ms);
  }
  commit.id = CommitId(commit);
  FaultPoint(std::string(fault_prefix) + ".before_metadata");
  KILN_RETURN_IF_ERROR(database_->Write([&](store::Transaction& tx) -> Status {
    std::vector<std::vector<store::Value>> object_rows;
    object_rows.reserve(pending.size());
    for (const NewObject& object : pending) {
      object_rows.push_back({object.id.Hex(), static_cast<int64_t>(object.info.raw_size),
                             static_cast<int64_t>(object.info.stored_size),
                             object.info.base ? store::Value(object.info.base->Hex())
                                              : store::Null(),
                             static_cast<int64_t>(object.depth), commit.created_ms});
    }
    if (!object_rows.empty()) {
      KILN_RETURN_IF_ERROR(
          tx.ExecMany("INSERT INTO data_objects (object_id, raw_size, stored_size, base_id, depth, "
                      "created_ms) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (object_id) DO NOTHING",
                      object_rows)
              .status());
    }
    KILN_RETURN_IF_ERROR(
        tx.Exec("INSERT INTO data_commits (commit_id, parents, message, author, created_ms) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (commit_id) DO NOTHING",
                {commit.id, JoinParents(commit.parents), commit.message, commit.author,
                 commit.created_ms})
            .status());
    std::vector<std::vector<store::Value>> entry_rows;
    for (const TableVersion& entry : commit.entries) {
      entry_rows.push_back(
          {commit.id, entry.name, entry.file_name,
           entry.format ? std::string(table::FormatName(*entry.format)) : std::string("bytes"),
           entry.is_table() ? entry.schema.ToJson().dump() : std::string("{}"),
           entry.key ? store::Value(*entry.key) : store::Null(), static_cast<int64_t>(entry.rows),
           static_cast<int64_t>(entry.bytes), entry.manifest.Hex(),
           entry.profile ? store::Value(entry.profile->Hex()) : store::Null()});
    }
    if (!entry_rows.empty()) {
      KILN_RETURN_IF_ERROR(
          tx.ExecMany("INSERT INTO data_entries (commit_id, name, file_name, format, schema_json, "
                      "key_column, row_count, byte_count, manifest_id, profile_id) VALUES "
                      "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (commit_id, name) DO NOTHING",
                      entry_rows)
              .status());
    }
    int64_t moved = 0;
    if (expected_head) {
      KILN_ASSIGN_OR_RETURN(
          moved, tx.Exec("UPDATE data_refs SET commit_id = ?, updated_ms = ? "
                         "WHERE name = ? AND kind = 'branch' AND commit_id = ?",
                         {commit.id, commit.created_ms, branch, *expected_head}));
    } else {
      KILN_ASSIGN_OR_RETURN(
          moved, tx.Exec("INSERT INTO data_refs (name, kind, commit_id, updated_ms) "
                         "VALUES (?, 'branch', ?, ?) ON CONFLICT (name) DO NOTHING",
                         {branch, commit.id, commit.created_ms}));
    }
    if (moved != 1) {
      return Conflict("branch '" + branch + "' moved while this commit was being made; retry");
    }
    return Status::Ok();
  }));
  FaultPoint(std::string(fault_prefix) + ".after_metadata");
  return commit;
}

Status RepositoryImpl::MoveBranch(const std::string& branch, const std::string& from,
                                  const std::string& to) {
  return database_->Write([&](store::Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(int64_t moved,
                          tx.Exec("UPDATE data_refs SET commit_id = ?, updated_ms = ? WHERE "
                                  "name = ? AND kind = 'branch' AND commit_id = ?",
                                  {to, Clock::Real()->NowMillis(), branch, from}));
    if (moved != 1) return Conflict("branch '" + branch + "' moved meanwhile; retry");
    return Status::Ok();
  });
}

struct InputFile {
  std::string path;       // on disk
  std::string file_name;  // in the commit
  std::optional<std::string> table;
  std::optional<std::string> key;
};

Result<std::vector<InputFile>> ExpandInputs(const std::vector<CommitInput>& inputs) {
  std::vector<InputFile> files;
  for (const CommitInput& input : inputs) {
    std::error_code error;
    std::filesystem::path path(input.path);
    auto status = std::filesystem::status(path, error);
    if (error || !std::filesystem::exists(status)) {
      return NotFound("'" + input.path + "' does not exist");
    }
    if (std::filesystem::is_directory(status)) {
      if (input.table) {
        return InvalidArgument("--table names one file; '" + input.path + "' is a folder");
      }
      std::filesystem::path root = path.lexically_normal();
      if (root.filename().empty()) root = root.parent_path();
      std::vector<InputFile> found;
      for (auto it = std::filesystem::recursive_directory_iterator(root, error);
           !error && it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
        if (!it->is_regular_file()) continue;
        std::string relative =
            (root.filename() / std::filesystem::relative(it->path(), root)).generic_string();
        found.push_back(InputFile{it->path().string(), relative, std::nullopt, input.key});
      }
      if (error) return IoError("cannot list '" + input.path + "': " + error.message());
      std::sort(found.begin(), found.end(),
                [](const InputFile& a, const InputFile& b) { return a.file_name < b.file_name; });
      files.insert(files.end(), found.begin(), found.end());
    } else {
      files.push_back(
          InputFile{input.path, path.filename().string(), input.table, input.key});
    }
  }
  return files;
}

Result<CommitResult> RepositoryImpl::Commit(const CommitRequest& request) {
  KILN_RETURN_IF_ERROR(CheckRefName("branch", request.branch));
  if (request.inputs.empty() && request.remove.empty()) {
    return InvalidArgument("nothing to commit: name at least one file");
  }
  KILN_ASSIGN_OR_RETURN(std::vector<InputFile> files, ExpandInputs(request.inputs));
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<WriteLock> lock, WriteLock::Acquire(objects_->root()));

  std::string kind;
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> head, RefTarget(request.branch, &kind));
  if (head && kind != "branch") {
    return InvalidArgument("'" + request.branch + "' is a tag; commits go on branches");
  }
  CommitInfo parent;
  if (head) {
    KILN_ASSIGN_OR_RETURN(parent, LoadCommitOrError(*head));
    KILN_RETURN_IF_ERROR(LoadChunks(parent));
  } else {
    KILN_ASSIGN_OR_RETURN(std::vector<Ref> refs, ListRefs());
    if (!refs.empty()) {
      return NotFound("branch '" + request.branch + "' does not exist (create it with `kiln data "
                      "branch " + request.branch + "`)");
    }
  }
  std::map<std::string, TableVersion> tree;
  for (const TableVersion& entry : parent.entries) tree[entry.name] = entry;

  uint64_t total_bytes = 0;
  for (const InputFile& file : files) {
    std::error_code error;
    total_bytes += std::filesystem::file_size(file.path, error);
  }
  uint64_t done_bytes = 0;

  ObjectIndex index(database_);
  CommitResult result;
  std::set<std::string> named;
  for (const InputFile& file : files) {
    KILN_RETURN_IF_ERROR(CheckEntryPath(file.file_name));
    IngestTarget target;
    target.format = table::FormatFromPath(file.file_name);
    if (file.table) {
      auto existing = tree.find(*file.table);
      if (existing == tree.end() || !existing->second.is_table()) {
        return NotFound("table '" + *file.table + "' does not exist on branch '" +
                        request.branch + "'; commit " + file.file_name +
                        " without --table to create it");
      }
      if (!target.format) {
        return InvalidArgument("'" + file.path + "' is not a CSV, TSV or JSONL table");
      }
      target.name = *file.table;
      target.file_name = Stem(existing->second.file_name) + Extension(file.file_name);
    } else {
      target.name = target.format ? Stem(file.file_name) : file.file_name;
      target.file_name = file.file_name;
    }
    if (!named.insert(target.name).second) {
      return InvalidArgument("two inputs would both be '" + target.name + "'");
    }
    auto previous = tree.find(target.name);
    if (previous != tree.end()) {
      target.previous = &previous->second;
      if (previous->second.is_table() != target.format.has_value()) {
        return InvalidArgument("'" + target.name + "' is a " +
                               (previous->second.is_table() ? "table" : "file") +
                               " in the parent commit; " + file.file_name + " is not");
      }
    }
    target.key = file.key;
    if (!target.key && target.previous != nullptr) target.key = target.previous->key;
    std::error_code size_error;
    target.expected_bytes = std::filesystem::file_size(file.path, size_error);
    if (size_error) target.expected_bytes = 0;

    Ingest ingest(objects_.get(), &index, &pool_, &options_, target);
    KILN_ASSIGN_OR_RETURN(TableVersion version,
                          internal::IngestFile(file.path, ingest, [&](uint64_t bytes) {
                            done_bytes += bytes;
                            if (request.progress) request.progress(done_bytes, total_bytes);
                          }));
    result.stats.push_back(ingest.stats());
    tree[target.name] = std::move(version);
  }
  for (const std::string& name : request.remove) {
    if (tree.erase(name) == 0) {
      return NotFound("'" + name + "' is not in branch '" + request.branch + "'");
    }
  }

  CommitInfo commit;
  if (head) commit.parents.push_back(*head);
  commit.message = request.message;
  commit.author = request.author.empty() ? "unknown" : request.author;
  for (auto& [name, entry] : tree) commit.entries.push_back(entry);
  if (head && SameTree(commit.entries, parent.entries)) {
    result.commit = parent;
    result.unchanged = true;
    return result;
  }
  KILN_RETURN_IF_ERROR(CheckBranchRules(request.branch, commit.entries));
  KILN_ASSIGN_OR_RETURN(result.commit,
                        WriteCommit(std::move(commit), request.branch, head, index, "data.commit"));
  return result;
}

// ---- merge and revert ------------------------------------------------------------------------

Result<MergeResult> RepositoryImpl::Merge(const MergeRequest& request) {
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<WriteLock> lock, WriteLock::Acquire(objects_->root()));
  std::string kind;
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> ours_id, RefTarget(request.into, &kind));
  if (!ours_id || kind != "branch") {
    return NotFound("branch '" + request.into + "' does not exist");
  }
  KILN_ASSIGN_OR_RETURN(CommitInfo theirs, Resolve(request.source));
  MergeResult result;
  KILN_ASSIGN_OR_RETURN(bool merged_already, IsAncestor(theirs.id, *ours_id));
  if (merged_already) {
    result.up_to_date = true;
    KILN_ASSIGN_OR_RETURN(CommitInfo ours, LoadCommitOrError(*ours_id));
    result.commit = std::move(ours);
    return result;
  }
  KILN_ASSIGN_OR_RETURN(bool fast_forward, IsAncestor(*ours_id, theirs.id));
  if (fast_forward) {
    KILN_RETURN_IF_ERROR(CheckBranchRules(request.into, theirs.entries));
    FaultPoint("data.merge.before_metadata");
    KILN_RETURN_IF_ERROR(MoveBranch(request.into, *ours_id, theirs.id));
    FaultPoint("data.merge.after_metadata");
    result.fast_forward = true;
    result.commit = std::move(theirs);
    return result;
  }
  KILN_ASSIGN_OR_RETURN(CommitInfo ours, LoadCommitOrError(*ours_id));
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> base_id, MergeBase(ours.id, theirs.id));
  CommitInfo base;
  if (base_id) {
    KILN_ASSIGN_OR_RETURN(base, LoadCommitOrError(*base_id));
  }
  KILN_RETURN_IF_ERROR(LoadChunks(ours));
  KILN_RETURN_IF_ERROR(LoadChunks(theirs));
  KILN_RETURN_IF_ERROR(LoadChunks(base));

  std::set<std::string> names;
  for (const CommitInfo* side : {&base, &ours, &theirs}) {
    for (const TableVersion& entry : side->entries) names.insert(entry.name);
  }
  ObjectIndex index(database_);
  std::vector<TableVersion> merged;
  for (const std::string& name : names) {
    const TableVersion* in_base = base.Find(name);
    const TableVersion* in_ours = ours.Find(name);
    const TableVersion* in_theirs = theirs.Find(name);
    auto same = [](const TableVersion* a, const TableVersion* b) {
      if (a == nullptr || b == nullptr) return a == b;
      return SameEntry(*a, *b);
    };
    if (same(in_ours, in_theirs) || same(in_base, in_theirs)) {
      if (in_ours != nullptr) merged.push_back(*in_ours);
      continue;
    }
    if (same(in_base, in_ours)) {
      if (in_theirs != nullptr) merged.push_back(*in_theirs);
      continue;
    }
    // Both sides changed it, differently.
    bool tables = (in_ours == nullptr || in_ours->is_table()) &&
                  (in_theirs == nullptr || in_theirs->is_table()) &&
                  (in_base == nullptr || in_base->is_table());
    if (!tables) {
      if (request.strategy == MergeStrategy::kOurs) {
        if (in_ours != nullptr) merged.push_back(*in_ours);
      } else if (request.strategy == MergeStrategy::kTheirs) {
        if (in_theirs != nullptr) merged.push_back(*in_theirs);
      } else {
        MergeConflict conflict;
        conflict.table = name;
        conflict.reason = "file changed on both sides";
        conflict.ours = in_ours ? Json{{"bytes", in_ours->bytes}, {"manifest", in_ours->manifest.Hex()}}
                                : Json(nullptr);
        conflict.theirs = in_theirs ? Json{{"bytes", in_theirs->bytes},
                                           {"manifest", in_theirs->manifest.Hex()}}
                                    : Json(nullptr);
        result.conflicts.push_back(std::move(conflict));
      }
      continue;
    }
    const TableVersion* shape = in_ours != nullptr ? in_ours : in_theirs;
    IngestTarget target;
    target.name = name;
    target.file_name = shape->file_name;
    target.format = shape->format;
    target.key = shape->key;
    target.previous = in_ours;
    auto ingest = std::make_unique<Ingest>(objects_.get(), &index, &pool_, &options_, target);
    KILN_ASSIGN_OR_RETURN(
        TableMerge table_merge,
        MergeTable(in_base, in_ours, in_theirs, loader_, request.strategy,
                   [&](std::string_view bytes) { return ingest->Append(bytes); }));
    switch (table_merge.outcome) {
      case TableMerge::Outcome::kTakeOurs:
        if (in_ours != nullptr) merged.push_back(*in_ours);
        break;
      case TableMerge::Outcome::kTakeTheirs:
        if (in_theirs != nullptr) merged.push_back(*in_theirs);
        break;
      case TableMerge::Outcome::kRemoved:
        break;
      case TableMerge::Outcome::kMerged: {
        KILN_ASSIGN_OR_RETURN(TableVersion version, ingest->Finish());
        merged.push_back(std::move(version));
        break;
      }
      case TableMerge::Outcome::kConflict:
        for (MergeConflict& conflict : table_merge.conflicts) {
          if (conflict.table.empty()) conflict.table = name;
          result.conflicts.push_back(std::move(conflict));
        }
        break;
    }
  }
  if (!result.conflicts.empty()) return result;
  KILN_RETURN_IF_ERROR(CheckBranchRules(request.into, merged));
  CommitInfo commit;
  commit.parents = {ours.id, theirs.id};
  commit.message = request.message.empty()
                       ? "merge " + request.source + " into " + request.into
                       : request.message;
  commit.author = request.author.empty() ? "unknown" : request.author;
  commit.entries = std::move(merged);
  std::sort(commit.entries.begin(), commit.entries.end(),
            [](const TableVersion& a, const TableVersion& b) { return a.name < b.name; });
  KILN_ASSIGN_OR_RETURN(result.commit,
                        WriteCommit(std::move(commit), request.into, ours.id, index, "data.merge"));
  return result;
}

Result<CommitInfo> RepositoryImpl::Revert(std::string_view ref, std::string_view branch,
                                          std::string_view author) {
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<WriteLock> lock, WriteLock::Acquire(objects_->root()));
  std::string kind;
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> head_id, RefTarget(branch, &kind));
  if (!head_id || kind != "branch") {
    return NotFound("branch '" + std::string(branch) + "' does not exist");
  }
  KILN_ASSIGN_OR_RETURN(CommitInfo target, Resolve(ref));
  if (target.parents.empty()) {
    return FailedPrecondition("commit " + target.id.substr(0, 12) +
                              " is the first commit; there is nothing before it to go back to");
  }
  KILN_ASSIGN_OR_RETURN(CommitInfo before, LoadCommitOrError(target.parents[0]));
  KILN_ASSIGN_OR_RETURN(CommitInfo head, LoadCommitOrError(*head_id));
  std::map<std::string, TableVersion> tree;
  for (const TableVersion& entry : head.entries) tree[entry.name] = entry;
  std::set<std::string> names;
  for (const TableVersion& entry : target.entries) names.insert(entry.name);
  for (const TableVersion& entry : before.entries) names.insert(entry.name);
  for (const std::string& name : names) {
    const TableVersion* was = before.Find(name);
    const TableVersion* became = target.Find(name);
    if (was != nullptr && became != nullptr && SameEntry(*was, *became)) continue;
    const TableVersion* now = head.Find(name);
    bool unchanged_since = (now == nullptr && became == nullptr) ||
                           (now != nullptr && became != nullptr && SameEntry(*now, *became));
    if (!unchanged_since) {
      return Conflict("'" + name + "' changed again after " + target.id.substr(0, 12) +
                      "; revert the later commits first or merge by hand");
    }
    if (was == nullptr) {
      tree.erase(name);
    } else {
      tree[name] = *was;
    }
  }
  CommitInfo commit;
  commit.parents = {head.id};
  commit.message = "revert " + target.id.substr(0, 12) + ": " + target.message;
  commit.author = author.empty() ? "unknown" : std::string(author);
  for (auto& [name, entry] : tree) commit.entries.push_back(entry);
  if (SameTree(commit.entries, head.entries)) {
    return FailedPrecondition("reverting " + target.id.substr(0, 12) + " changes nothing");
  }
  KILN_RETURN_IF_ERROR(CheckBranchRules(branch, commit.entries));
  ObjectIndex index(database_);
  return WriteCommit(std::move(commit), std::string(branch), head.id, index, "data.revert");
}

// ---- reading ---------------------------------------------------------------------------------

Result<TableVersion> RepositoryImpl::GetTable(std::string_view ref, std::string_view name) {
  KILN_ASSIGN_OR_RETURN(CommitInfo commit, Resolve(ref));
  const TableVersion* entry = commit.Find(name);
  if (entry == nullptr) {
    return NotFound("'" + std::string(name) + "' is not in " + std::string(ref) + " (commit " +
                    commit.id.substr(0, 12) + ")");
  }
  TableVersion version = *entry;
  KILN_RETURN_IF_ERROR(LoadManifest(*objects_, &version));
  return version;
}

Status RepositoryImpl::StreamChunks(
    const TableVersion& version,
    const std::function<Status(size_t index, std::string_view bytes)>& write) {
  const size_t window = static_cast<size_t>(pool_.size()) + 2;
  std::deque<std::future<Result<std::string>>> ahead;
  size_t next = 0;
  auto submit = [&] {
    auto promise = std::make_shared<std::promise<Result<std::string>>>();
    ahead.push_back(promise->get_future());
    Digest id = version.chunks[next++].id;
    pool_.Submit([this, promise, id] { promise->set_value(objects_->Get(id)); });
  };
  Status status;
  for (size_t i = 0; i < version.chunks.size(); ++i) {
    while (next < version.chunks.size() && ahead.size() < window) submit();
    Result<std::string> bytes = ahead.front().get();
    ahead.pop_front();
    if (!bytes.ok()) {
      status = bytes.status();
      break;
    }
    status = write(i, *bytes);
    if (!status.ok()) break;
  }
  for (auto& pending : ahead) pending.wait();  // the pool's tasks hold nothing of ours but this
  return status;
}

Status RepositoryImpl::Checkout(std::string_view ref, const std::string& dir,
                                std::optional<std::string> name, const Progress& progress) {
  KILN_ASSIGN_OR_RETURN(CommitInfo commit, Resolve(ref));
  std::vector<TableVersion> entries;
  for (const TableVersion& entry : commit.entries) {
    if (!name || entry.name == *name || entry.file_name == *name) entries.push_back(entry);
  }
  if (name && entries.empty()) {
    return NotFound("'" + *name + "' is not in " + std::string(ref));
  }
  uint64_t total = 0;
  for (const TableVersion& entry : entries) total += entry.bytes;
  uint64_t done = 0;
  for (TableVersion& entry : entries) {
    KILN_RETURN_IF_ERROR(CheckEntryPath(entry.file_name));
    KILN_RETURN_IF_ERROR(LoadManifest(*objects_, &entry));
    std::filesystem::path target = std::filesystem::path(dir) / entry.file_name;
    KILN_RETURN_IF_ERROR(MakeDirs(target.parent_path().string()));
    std::string temp = target.string() + ".kiln-tmp";
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return IoError("cannot write '" + temp + "': " + std::strerror(errno));
    Status status = StreamChunks(entry, [&](size_t, std::string_view bytes) -> Status {
      while (!bytes.empty()) {
        ssize_t wrote = ::write(fd, bytes.data(), bytes.size());
        if (wrote < 0) {
          if (errno == EINTR) continue;
          return IoError("cannot write '" + temp + "': " + std::strerror(errno));
        }
        bytes.remove_prefix(static_cast<size_t>(wrote));
        done += static_cast<uint64_t>(wrote);
      }
      if (progress) progress(done, total);
      return Status::Ok();
    });
    ::close(fd);
    if (status.ok() && ::rename(temp.c_str(), target.c_str()) != 0) {
      status = IoError("cannot rename onto '" + target.string() + "': " + std::strerror(errno));
    }
    if (!status.ok()) {
      ::unlink(temp.c_str());
      return status;
    }
  }
  return Status::Ok();
}

Status RepositoryImpl::ReadFile(std::string_view ref, std::string_view name,
                                const std::function<Status(std::string_view)>& write) {
  KILN_ASSIGN_OR_RETURN(TableVersion version, GetTable(ref, name));
  return StreamChunks(version, [&](size_t, std::string_view bytes) { return write(bytes); });
}

Status RepositoryImpl::Export(std::string_view ref, std::string_view table_name,
                              table::Format format,
                              const std::function<Status(std::string_view)>& write) {
  KILN_ASSIGN_OR_RETURN(TableVersion version, GetTable(ref, table_name));
  if (!version.is_table()) {
    return InvalidArgument("'" + std::string(table_name) + "' is a file, not a table");
  }
  if (*version.format == format) {
    return StreamChunks(version, [&](size_t, std::string_view bytes) { return write(bytes); });
  }
  table::RowWriter writer(format, version.schema);
  std::string out;
  writer.WriteHeader(&out);
  const size_t width = version.schema.columns.size();
  std::vector<table::Cell> cells;
  return StreamChunks(version, [&](size_t index, std::string_view bytes) -> Status {
    KILN_ASSIGN_OR_RETURN(std::unique_ptr<table::RowReader> reader,
                          table::RowReader::Open(*version.format, bytes,
                                                 ChunkReadOptions(version, index)));
    while (true) {
      KILN_ASSIGN_OR_RETURN(bool more, reader->Next());
      if (!more) break;
      cells.assign(reader->cells().begin(),
                   reader->cells().begin() + std::min(width, reader->cells().size()));
      cells.resize(width, table::Cell{"", true, false});
      writer.WriteRow(cells, &out);
      if (out.size() >= (1 << 20)) {
        KILN_RETURN_IF_ERROR(write(out));
        out.clear();
      }
    }
    if (index + 1 == version.chunks.size() && !out.empty()) {
      KILN_RETURN_IF_ERROR(write(out));
      out.clear();
    }
    return Status::Ok();
  });
}

Result<std::vector<TableDiff>> RepositoryImpl::Diff(std::string_view ref_a, std::string_view ref_b,
                                                    const DiffOptions& options) {
  KILN_ASSIGN_OR_RETURN(CommitInfo a, Resolve(ref_a));
  KILN_ASSIGN_OR_RETURN(CommitInfo b, Resolve(ref_b));
  std::set<std::string> names;
  for (const TableVersion& entry : a.entries) names.insert(entry.name);
  for (const TableVersion& entry : b.entries) names.insert(entry.name);
  std::vector<TableDiff> diffs;
  for (const std::string& name : names) {
    const TableVersion* in_a = a.Find(name);
    const TableVersion* in_b = b.Find(name);
    if (in_a != nullptr && in_b != nullptr && SameEntry(*in_a, *in_b)) continue;
    std::optional<TableVersion> loaded_a;
    std::optional<TableVersion> loaded_b;
    if (in_a != nullptr) {
      loaded_a = *in_a;
      KILN_RETURN_IF_ERROR(LoadManifest(*objects_, &*loaded_a));
    }
    if (in_b != nullptr) {
      loaded_b = *in_b;
      KILN_RETURN_IF_ERROR(LoadManifest(*objects_, &*loaded_b));
    }
    bool mixed = loaded_a && loaded_b && loaded_a->is_table() != loaded_b->is_table();
    if (mixed) {
      TableDiff diff;
      diff.table = name;
      diff.status = "modified";
      diffs.push_back(std::move(diff));
      continue;
    }
    KILN_ASSIGN_OR_RETURN(TableDiff diff,
                          DiffTables(loaded_a ? &*loaded_a : nullptr,
                                     loaded_b ? &*loaded_b : nullptr, loader_, options));
    diffs.push_back(std::move(diff));
  }
  return diffs;
}

Result<Json> RepositoryImpl::Profile(std::string_view ref, std::string_view table_name) {
  KILN_ASSIGN_OR_RETURN(CommitInfo commit, Resolve(ref));
  const TableVersion* entry = commit.Find(table_name);
  if (entry == nullptr) {
    return NotFound("'" + std::string(table_name) + "' is not in " + std::string(ref));
  }
  if (!entry->profile) {
    return InvalidArgument("'" + std::string(table_name) + "' is a file; only tables have profiles");
  }
  KILN_ASSIGN_OR_RETURN(std::string text, objects_->Get(*entry->profile));
  return ParseJson(text);
}

Result<std::vector<Violation>> RepositoryImpl::Validate(std::string_view ref, const Rules* rules) {
  KILN_ASSIGN_OR_RETURN(CommitInfo commit, Resolve(ref));
  std::optional<Rules> branch_rules;
  if (rules == nullptr) {
    std::string kind;
    KILN_ASSIGN_OR_RETURN(std::optional<std::string> target, RefTarget(ref, &kind));
    if (!target || kind != "branch") {
      return InvalidArgument("'" + std::string(ref) +
                             "' is not a branch, so it has no rules: give --rules FILE");
    }
    KILN_ASSIGN_OR_RETURN(std::optional<std::string> text, GetBranchRules(ref));
    if (!text) {
      return InvalidArgument("branch '" + std::string(ref) +
                             "' has no rules: give --rules FILE or attach some with "
                             "`kiln data rules " + std::string(ref) + " --set FILE`");
    }
    KILN_ASSIGN_OR_RETURN(branch_rules, Rules::Parse(*text, "rules of branch " + std::string(ref)));
    rules = &*branch_rules;
  }
  std::vector<Violation> violations;
  ReferenceProfiles references = [this](const std::string& reference, const std::string& table)
      -> Result<std::optional<Json>> {
    KILN_ASSIGN_OR_RETURN(CommitInfo other, Resolve(reference));
    const TableVersion* found = other.Find(table);
    if (found == nullptr || !found->profile) return std::optional<Json>();
    KILN_ASSIGN_OR_RETURN(std::string text, objects_->Get(*found->profile));
    KILN_ASSIGN_OR_RETURN(Json json, ParseJson(text));
    return std::optional<Json>(std::move(json));
  };
  for (const TableVersion& entry : commit.entries) {
    if (!entry.is_table() || !rules->AppliesTo(entry.name) || !entry.profile) continue;
    TableVersion version = entry;
    KILN_RETURN_IF_ERROR(LoadManifest(*objects_, &version));
    KILN_ASSIGN_OR_RETURN(std::string profile_text, objects_->Get(*entry.profile));
    KILN_ASSIGN_OR_RETURN(Json profile, ParseJson(profile_text));
    KILN_ASSIGN_OR_RETURN(std::vector<Violation> found,
                          data::Validate(*rules, version, profile, loader_, references));
    violations.insert(violations.end(), found.begin(), found.end());
  }
  return violations;
}

Status RepositoryImpl::SetBranchRules(std::string_view branch, const std::string& rules_text) {
  std::string kind;
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> target, RefTarget(branch, &kind));
  if (!target || kind != "branch") {
    return NotFound("branch '" + std::string(branch) + "' does not exist");
  }
  if (rules_text.empty()) {
    return database_->Write([&](store::Transaction& tx) -> Status {
      return tx.Exec("DELETE FROM data_rules WHERE branch = ?", {std::string(branch)}).status();
    });
  }
  KILN_RETURN_IF_ERROR(Rules::Parse(rules_text, "rules").status());
  return database_->Write([&](store::Transaction& tx) -> Status {
    return tx
        .Exec("INSERT INTO data_rules (branch, rules, updated_ms) VALUES (?, ?, ?) "
              "ON CONFLICT (branch) DO UPDATE SET rules = excluded.rules, "
              "updated_ms = excluded.updated_ms",
              {std::string(branch), rules_text, Clock::Real()->NowMillis()})
        .status();
  });
}

Result<std::optional<std::string>> RepositoryImpl::GetBranchRules(std::string_view branch) {
  std::optional<std::string> text;
  KILN_RETURN_IF_ERROR(database_->Read([&](store::Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(store::Rows rows, tx.Query("SELECT rules FROM data_rules WHERE branch = ?",
                                                     {std::string(branch)}));
    if (!rows.empty()) text = rows.Text(0, 0);
    return Status::Ok();
  }));
  return text;
}

}  // namespace

Result<std::unique_ptr<Repository>> Repository::Open(store::Database* database,
                                                     const std::string& objects_root,
                                                     RepositoryOptions options) {
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<objects::ObjectStore> objects,
                        objects::ObjectStore::OpenLocal(objects_root));
  return std::unique_ptr<Repository>(
      new RepositoryImpl(database, std::move(objects), std::move(options)));
}

}  // namespace kiln::data
