#include "kiln/cli/data_client.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <utility>
#include <vector>

#include "kiln/cli/mlflow_client.h"
#include "kiln/core/file_util.h"
#include "kiln/core/log.h"
#include "kiln/http/client.h"
#include "kiln/http/message.h"
#include "kiln/store/database.h"

namespace kiln::cli {
namespace {

namespace fs = std::filesystem;

// Requests that do real work on the server (commit, merge, checkout of a large file) may take
// long; reads of metadata answer in milliseconds.
constexpr int kShortTimeoutMs = 60 * 1000;
constexpr int kLongTimeoutMs = 3600 * 1000;
// What "no limit" on a log means (the data API's largest limit too).
constexpr size_t kAllCommits = 1000000;

Json CommitList(const std::vector<data::CommitInfo>& commits) {
  Json list = Json::array();
  for (const data::CommitInfo& commit : commits) list.push_back(commit.ToJson());
  return {{"commits", std::move(list)}};
}

// A repository in this process, over the store's database and object folder.
class LocalDataClient : public DataClient {
 public:
  static Result<std::unique_ptr<DataClient>> Open(const StoreLocation& location) {
    auto client = std::unique_ptr<LocalDataClient>(new LocalDataClient(location));
    KILN_ASSIGN_OR_RETURN(client->database_, store::Database::Open(location.uri));
    KILN_ASSIGN_OR_RETURN(client->repository_,
                          data::Repository::Open(client->database_.get(), location.objects_root));
    return std::unique_ptr<DataClient>(std::move(client));
  }

  Result<Json> Commit(const data::CommitRequest& request) override {
    KILN_ASSIGN_OR_RETURN(data::CommitResult result, repository_->Commit(request));
    return result.ToJson();
  }

  Result<Json> Show(std::string_view ref) override {
    KILN_ASSIGN_OR_RETURN(data::CommitInfo commit, repository_->Resolve(ref));
    return commit.ToJson();
  }

  Result<Json> Log(std::string_view ref, size_t limit) override {
    KILN_ASSIGN_OR_RETURN(std::vector<data::CommitInfo> commits,
                          repository_->Log(ref, limit == 0 ? kAllCommits : limit));
    return CommitList(commits);
  }

  Result<Json> Refs() override {
    KILN_ASSIGN_OR_RETURN(std::vector<data::Ref> refs, repository_->ListRefs());
    Json list = Json::array();
    for (const data::Ref& ref : refs) list.push_back(ref.ToJson());
    return Json{{"refs", std::move(list)}};
  }

  Status CreateBranch(std::string_view name, std::string_view from_ref) override {
    return repository_->CreateBranch(name, from_ref);
  }
  Status DeleteBranch(std::string_view name) override { return repository_->DeleteBranch(name); }
  Status CreateTag(std::string_view name, std::string_view ref) override {
    return repository_->CreateTag(name, ref);
  }
  Status DeleteTag(std::string_view name) override { return repository_->DeleteTag(name); }

  Result<Json> Diff(std::string_view ref_a, std::string_view ref_b, size_t max_rows) override {
    // Resolved once, so the reply names the exact commits compared.
    KILN_ASSIGN_OR_RETURN(data::CommitInfo a, repository_->Resolve(ref_a));
    KILN_ASSIGN_OR_RETURN(data::CommitInfo b, repository_->Resolve(ref_b));
    data::DiffOptions options;
    options.max_rows = max_rows;
    KILN_ASSIGN_OR_RETURN(std::vector<data::TableDiff> diffs,
                          repository_->Diff(a.id, b.id, options));
    Json tables = Json::array();
    for (const data::TableDiff& diff : diffs) tables.push_back(diff.ToJson());
    return Json{{"a", a.id}, {"b", b.id}, {"tables", std::move(tables)}};
  }

  Result<Json> Merge(const data::MergeRequest& request) override {
    KILN_ASSIGN_OR_RETURN(data::MergeResult result, repository_->Merge(request));
    return result.ToJson();
  }

  Result<Json> Revert(std::string_view ref, std::string_view branch,
                      std::string_view author) override {
    KILN_ASSIGN_OR_RETURN(data::CommitInfo commit, repository_->Revert(ref, branch, author));
    return commit.ToJson();
  }

  Result<Json> Profile(std::string_view ref, std::string_view table) override {
    return repository_->Profile(ref, table);
  }

  Status Export(std::string_view ref, std::string_view table, table::Format format,
                const Sink& write) override {
    return repository_->Export(ref, table, format, write);
  }

  Result<Json> Checkout(std::string_view ref, const std::string& dir,
                        const std::optional<std::string>& name,
                        const data::Progress& progress) override {
    KILN_ASSIGN_OR_RETURN(data::CommitInfo commit, repository_->Resolve(ref));
    KILN_RETURN_IF_ERROR(repository_->Checkout(commit.id, dir, name, progress));
    return commit.ToJson();
  }

  Result<Json> Validate(std::string_view ref, const std::optional<std::string>& rules_text,
                        const std::string& rules_name) override {
    KILN_ASSIGN_OR_RETURN(data::CommitInfo commit, repository_->Resolve(ref));
    std::vector<data::Violation> violations;
    if (rules_text.has_value()) {
      KILN_ASSIGN_OR_RETURN(data::Rules rules, data::Rules::Parse(*rules_text, rules_name));
      // The branch's rules when `ref` names one; the commit id would lose that.
      KILN_ASSIGN_OR_RETURN(violations, repository_->Validate(ref, &rules));
    } else {
      KILN_ASSIGN_OR_RETURN(violations, repository_->Validate(ref, nullptr));
    }
    Json list = Json::array();
    for (const data::Violation& violation : violations) list.push_back(violation.ToJson());
    return Json{{"ref", commit.id}, {"violations", std::move(list)}};
  }

  Result<std::optional<std::string>> GetRules(std::string_view branch) override {
    KILN_ASSIGN_OR_RETURN(std::optional<std::string> rules, repository_->GetBranchRules(branch));
    if (rules) return rules;
    // A branch without rules and no branch read alike; say which it is.
    KILN_ASSIGN_OR_RETURN(std::vector<data::Ref> refs, repository_->ListRefs());
    for (const data::Ref& ref : refs) {
      if (ref.kind == "branch" && ref.name == branch) return rules;
    }
    return NotFound("branch '" + std::string(branch) + "' does not exist");
  }
  Status SetRules(std::string_view branch, const std::string& rules_text) override {
    return repository_->SetBranchRules(branch, rules_text);
  }

  Result<Json> Gc(const data::GcOptions& options) override {
    KILN_ASSIGN_OR_RETURN(data::GcReport report, repository_->Gc(options));
    return report.ToJson();
  }

  Result<Json> Fsck(const data::Progress& progress) override {
    KILN_ASSIGN_OR_RETURN(data::FsckReport report, repository_->Fsck(progress));
    return report.ToJson();
  }

  std::string DisplayName() const override { return RedactUri(location_.uri); }

 private:
  explicit LocalDataClient(StoreLocation location) : location_(std::move(location)) {}

  StoreLocation location_;
  // Declared before the repository, which uses it: destroyed after it.
  std::unique_ptr<store::Database> database_;
  std::unique_ptr<data::Repository> repository_;
};

std::string Query(std::initializer_list<std::pair<std::string_view, std::string>> fields) {
  std::string query;
  for (const auto& [key, value] : fields) {
    query += query.empty() ? "?" : "&";
    query += std::string(key) + "=" + http::PercentEncode(value);
  }
  return query;
}

struct UploadFile {
  std::string path;       // on this machine
  std::string file_name;  // in the commit
  uint64_t size = 0;
  std::optional<std::string> table;
  std::optional<std::string> key;
};

// The files a commit's inputs name: a file as itself, a folder as every regular file below it.
Result<std::vector<UploadFile>> ExpandInputs(const std::vector<data::CommitInput>& inputs) {
  std::vector<UploadFile> files;
  for (const data::CommitInput& input : inputs) {
    std::error_code error;
    fs::path path(input.path);
    fs::file_status status = fs::status(path, error);
    if (error || !fs::exists(status)) return NotFound("'" + input.path + "' does not exist");
    if (!fs::is_directory(status)) {
      uint64_t size = fs::file_size(path, error);
      if (error) return IoError("cannot read '" + input.path + "': " + error.message());
      files.push_back({input.path, path.filename().string(), size, input.table, input.key});
      continue;
    }
    if (input.table) {
      return InvalidArgument("--table names one file; '" + input.path + "' is a folder");
    }
    fs::path root = path.lexically_normal();
    if (root.filename().empty()) root = root.parent_path();
    std::vector<UploadFile> found;
    for (auto it = fs::recursive_directory_iterator(root, error);
         !error && it != fs::recursive_directory_iterator(); it.increment(error)) {
      if (!it->is_regular_file()) continue;
      std::error_code size_error;
      uint64_t size = fs::file_size(it->path(), size_error);
      if (size_error) return IoError("cannot read '" + it->path().string() + "'");
      found.push_back({it->path().string(),
                       (root.filename() / fs::relative(it->path(), root)).generic_string(), size,
                       std::nullopt, input.key});
    }
    if (error) return IoError("cannot list '" + input.path + "': " + error.message());
    std::sort(found.begin(), found.end(), [](const UploadFile& a, const UploadFile& b) {
      return a.file_name < b.file_name;
    });
    files.insert(files.end(), found.begin(), found.end());
  }
  return files;
}

// A kiln server's data API over HTTP.
class RemoteDataClient : public DataClient {
 public:
  explicit RemoteDataClient(std::string base_url) : base_url_(std::move(base_url)) {}

  Result<Json> Commit(const data::CommitRequest& request) override {
    // Upload every file first (in parts), then commit them in one request. A folder is sent as
    // its files, named "<folder>/<relative path>" as a local commit names them.
    KILN_ASSIGN_OR_RETURN(std::vector<UploadFile> files, ExpandInputs(request.inputs));
    uint64_t total = 0;
    for (const UploadFile& file : files) total += file.size;
    uint64_t done = 0;
    Json inputs = Json::array();
    for (const UploadFile& file : files) {
      KILN_ASSIGN_OR_RETURN(std::string upload_id, Upload(file.path, total, done, request.progress));
      Json item = {{"upload_id", upload_id}, {"file_name", file.file_name}};
      if (file.table) item["table"] = *file.table;
      if (file.key) item["key"] = *file.key;
      inputs.push_back(std::move(item));
    }
    Json body = {{"branch", request.branch},
                 {"message", request.message},
                 {"author", request.author},
                 {"inputs", std::move(inputs)},
                 {"remove", request.remove}};
    return CallJson("POST", "/commits", &body, kLongTimeoutMs);
  }

  Result<Json> Show(std::string_view ref) override {
    return CallJson("GET", "/commits/" + http::PercentEncode(ref), nullptr, kShortTimeoutMs);
  }

  Result<Json> Log(std::string_view ref, size_t limit) override {
    return CallJson("GET",
                    "/log" + Query({{"ref", std::string(ref)}, {"limit", std::to_string(limit)}}),
                    nullptr, kShortTimeoutMs);
  }

  Result<Json> Refs() override { return CallJson("GET", "/refs", nullptr, kShortTimeoutMs); }

  Status CreateBranch(std::string_view name, std::string_view from_ref) override {
    Json body = {{"name", name}, {"from", from_ref}};
    return CallJson("POST", "/branches", &body, kShortTimeoutMs).status();
  }
  Status DeleteBranch(std::string_view name) override {
    return CallJson("DELETE", "/branches/" + http::PercentEncode(name), nullptr, kShortTimeoutMs)
        .status();
  }
  Status CreateTag(std::string_view name, std::string_view ref) override {
    Json body = {{"name", name}, {"ref", ref}};
    return CallJson("POST", "/tags", &body, kShortTimeoutMs).status();
  }
  Status DeleteTag(std::string_view name) override {
    return CallJson("DELETE", "/tags/" + http::PercentEncode(name), nullptr, kShortTimeoutMs)
        .status();
  }

  Result<Json> Diff(std::string_view ref_a, std::string_view ref_b, size_t max_rows) override {
    return CallJson("GET",
                    "/diff" + Query({{"a", std::string(ref_a)},
                                     {"b", std::string(ref_b)},
                                     {"max_rows", std::to_string(max_rows)}}),
                    nullptr, kLongTimeoutMs);
  }

  Result<Json> Merge(const data::MergeRequest& request) override {
    Json body = {{"source", request.source},
                 {"into", request.into},
                 {"strategy", request.strategy == data::MergeStrategy::kOurs     ? "ours"
                              : request.strategy == data::MergeStrategy::kTheirs ? "theirs"
                                                                                 : ""},
                 {"message", request.message},
                 {"author", request.author}};
    KILN_ASSIGN_OR_RETURN(http::ClientResponse response,
                          Send("POST", "/merge", body.dump(), "application/json", kLongTimeoutMs));
    // A merge with conflicts is a 409 whose body is the MergeResult (with the error fields).
    if (response.status == 409) {
      Result<Json> parsed = ParseJson(response.body);
      if (parsed.ok() && parsed->is_object() && parsed->contains("conflicts")) {
        for (const char* field : {"error_code", "kiln_code", "message"}) parsed->erase(field);
        return parsed;
      }
    }
    return DecodeJson(response);
  }

  Result<Json> Revert(std::string_view ref, std::string_view branch,
                      std::string_view author) override {
    Json body = {{"ref", ref}, {"branch", branch}, {"author", author}};
    return CallJson("POST", "/revert", &body, kLongTimeoutMs);
  }

  Result<Json> Profile(std::string_view ref, std::string_view table) override {
    return CallJson("GET",
                    "/profile" + Query({{"ref", std::string(ref)}, {"table", std::string(table)}}),
                    nullptr, kShortTimeoutMs);
  }

  Status Export(std::string_view ref, std::string_view table, table::Format format,
                const Sink& write) override {
    KILN_ASSIGN_OR_RETURN(
        http::ClientResponse response,
        Send("GET",
             "/export" + Query({{"ref", std::string(ref)},
                                {"table", std::string(table)},
                                {"format", std::string(table::FormatName(format))}}),
             "", "", kLongTimeoutMs));
    if (response.status != 200) return StatusFromDataApiError(response.status, response.body);
    return write(response.body);
  }

  Result<Json> Checkout(std::string_view ref, const std::string& dir,
                        const std::optional<std::string>& name,
                        const data::Progress& progress) override {
    // One commit id for every file, so a branch moving meanwhile cannot mix two versions.
    KILN_ASSIGN_OR_RETURN(Json commit, Show(ref));
    std::string id = commit.value("id", "");
    std::vector<const Json*> entries;
    uint64_t total = 0;
    if (auto it = commit.find("entries"); it != commit.end() && it->is_array()) {
      for (const Json& entry : *it) {
        if (name && entry.value("name", "") != *name) continue;
        entries.push_back(&entry);
        total += entry.value("bytes", uint64_t{0});
      }
    }
    if (name && entries.empty()) {
      return NotFound("commit " + id.substr(0, 12) + " has no table or file '" + *name + "'");
    }
    uint64_t done = 0;
    for (const Json* entry : entries) {
      std::string file_name = entry->value("file_name", entry->value("name", ""));
      if (!data::IsSafeEntryPath(file_name)) {
        return Internal("the server sent an unsafe file name '" + file_name + "'");
      }
      KILN_ASSIGN_OR_RETURN(
          http::ClientResponse response,
          Send("GET", "/files" + Query({{"ref", id}, {"name", entry->value("name", "")}}), "", "",
               kLongTimeoutMs));
      if (response.status != 200) return StatusFromDataApiError(response.status, response.body);
      std::string path = dir + "/" + file_name;
      KILN_RETURN_IF_ERROR(MakeDirs(fs::path(path).parent_path().string()));
      KILN_RETURN_IF_ERROR(WriteFileAtomic(path, response.body));
      done += response.body.size();
      if (progress) progress(done, total);
    }
    return commit;
  }

  Result<Json> Validate(std::string_view ref, const std::optional<std::string>& rules_text,
                        const std::string& rules_name) override {
    Json body = {{"ref", ref}};
    if (rules_text) {
      body["rules"] = *rules_text;
      body["rules_name"] = rules_name;
    }
    return CallJson("POST", "/validate", &body, kLongTimeoutMs);
  }

  Result<std::optional<std::string>> GetRules(std::string_view branch) override {
    KILN_ASSIGN_OR_RETURN(
        Json reply, CallJson("GET", "/rules/" + http::PercentEncode(branch), nullptr, kShortTimeoutMs));
    if (auto it = reply.find("rules"); it != reply.end() && it->is_string()) {
      return std::optional<std::string>(it->get<std::string>());
    }
    return std::optional<std::string>();
  }

  Status SetRules(std::string_view branch, const std::string& rules_text) override {
    std::string path = "/rules/" + http::PercentEncode(branch);
    if (rules_text.empty()) return CallJson("DELETE", path, nullptr, kShortTimeoutMs).status();
    Json body = {{"rules", rules_text}};
    return CallJson("PUT", path, &body, kShortTimeoutMs).status();
  }

  Result<Json> Gc(const data::GcOptions& options) override {
    Json body = {{"retention_ms", options.retention_ms}, {"dry_run", options.dry_run}};
    return CallJson("POST", "/gc", &body, kLongTimeoutMs);
  }

  Result<Json> Fsck(const data::Progress&) override {
    return CallJson("GET", "/fsck", nullptr, kLongTimeoutMs);
  }

  std::string DisplayName() const override { return RedactUri(base_url_); }

 private:
  Result<http::ClientResponse> Send(const std::string& method, const std::string& path,
                                    const std::string& body, const std::string& content_type,
                                    int timeout_ms) {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!content_type.empty()) headers.emplace_back("Content-Type", content_type);
    Result<http::ClientResponse> response = client_.Send(
        method, base_url_ + std::string(kDataApiPrefix) + path, body, headers, timeout_ms);
    if (!response.ok()) {
      return Status(response.status().code(), "cannot reach kiln server at " +
                                                  RedactUri(base_url_) + ": " +
                                                  response.status().message());
    }
    return response;
  }

  static Result<Json> DecodeJson(const http::ClientResponse& response) {
    if (response.status < 200 || response.status >= 300) {
      return StatusFromDataApiError(response.status, response.body);
    }
    if (response.body.empty()) return Json::object();
    Result<Json> parsed = ParseJson(response.body);
    if (!parsed.ok()) {
      return Internal("the server replied with malformed JSON: " + parsed.status().message());
    }
    return parsed;
  }

  Result<Json> CallJson(const std::string& method, const std::string& path, const Json* body,
                        int timeout_ms) {
    std::string text = body ? body->dump(-1, ' ', false, Json::error_handler_t::replace) : "";
    KILN_ASSIGN_OR_RETURN(http::ClientResponse response,
                          Send(method, path, text, body ? "application/json" : "", timeout_ms));
    return DecodeJson(response);
  }

  // Sends the file in parts: the first creates the upload, the rest append at their offset.
  Result<std::string> Upload(const std::string& path, uint64_t total, uint64_t& done,
                             const data::Progress& progress) {
    std::ifstream file(path, std::ios::binary);
    if (!file) return NotFound("cannot read '" + path + "'");
    std::string part;
    std::string upload_id;
    uint64_t offset = 0;
    do {
      part.resize(kUploadPartBytes);
      file.read(part.data(), static_cast<std::streamsize>(part.size()));
      part.resize(static_cast<size_t>(file.gcount()));
      if (file.bad()) return IoError("cannot read '" + path + "'");
      std::string target = upload_id.empty()
                               ? std::string("/uploads")
                               : "/uploads/" + upload_id + Query({{"offset", std::to_string(offset)}});
      KILN_ASSIGN_OR_RETURN(http::ClientResponse response,
                            Send("POST", target, part, "application/octet-stream", kLongTimeoutMs));
      KILN_ASSIGN_OR_RETURN(Json reply, DecodeJson(response));
      if (upload_id.empty()) upload_id = reply.value("upload_id", "");
      if (upload_id.empty()) return Internal("the server's upload reply has no upload_id");
      offset += part.size();
      done += part.size();
      if (progress) progress(done, total);
    } while (file && !file.eof());
    return upload_id;
  }

  std::string base_url_;
  http::Client client_;
};

}  // namespace

Result<std::unique_ptr<DataClient>> OpenDataClient(const StoreLocation& location) {
  if (location.kind == StoreLocation::Kind::kRemote) {
    return std::unique_ptr<DataClient>(std::make_unique<RemoteDataClient>(location.uri));
  }
  return LocalDataClient::Open(location);
}

Status StatusFromDataApiError(int http_status, std::string_view body) {
  // The data API sends MLflow's error shape plus kiln_code: one decoding for both APIs.
  return StatusFromMlflowError(http_status, body);
}

}  // namespace kiln::cli
