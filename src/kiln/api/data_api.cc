#include "kiln/api/data_api.h"

#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "kiln/api/errors.h"
#include "kiln/api/request.h"
#include "kiln/core/file_util.h"
#include "kiln/core/ids.h"
#include "kiln/core/json.h"
#include "kiln/data/repository.h"

namespace kiln::api {
namespace {

namespace fs = std::filesystem;

// Answers the largest log request; "all" from a client is a number this large.
constexpr int64_t kMaxLogLimit = 1000000;
constexpr size_t kMaxDiffRows = 100000;

std::string Route(std::string_view path) { return std::string(kDataApiPrefix) + std::string(path); }

// WriteError's reply plus kiln_code, the exact Status code.
void WriteDataError(const Status& status, http::Response& response) {
  WriteError(status, response);
  Json body = {{"error_code", std::string(MlflowErrorCode(status.code()))},
               {"kiln_code", std::string(StatusCodeName(status.code()))},
               {"message", status.message()}};
  response.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
}

using DataRpc = std::function<Status(const http::Request& request, http::Response& response)>;

http::Handler Wrap(DataRpc rpc) {
  return [rpc = std::move(rpc)](const http::Request& request, http::Response& response) {
    http::Response reply;
    Status status = rpc(request, reply);
    if (!status.ok()) {
      WriteDataError(status, response);
      return;
    }
    response = std::move(reply);
  };
}

// The path below `prefix` ("/api/kiln/v1/data/commits/" + REF), which must not be empty.
Result<std::string> PathTail(const http::Request& request, std::string_view prefix,
                             std::string_view what) {
  std::string tail = request.path.size() > prefix.size() ? request.path.substr(prefix.size()) : "";
  if (tail.empty()) return InvalidArgument("the path names no " + std::string(what));
  return tail;
}

Result<std::string> RequireQuery(const http::Request& request, std::string_view name) {
  std::optional<std::string> value = request.QueryParam(name);
  if (!value || value->empty()) {
    return InvalidArgument("Missing value for required parameter '" + std::string(name) + "'");
  }
  return *value;
}

Result<int64_t> QueryInt(const http::Request& request, std::string_view name, int64_t fallback,
                         int64_t min, int64_t max) {
  std::optional<std::string> text = request.QueryParam(name);
  if (!text || text->empty()) return fallback;
  int64_t value = 0;
  auto [end, error] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (error != std::errc() || end != text->data() + text->size() || value < min || value > max) {
    return InvalidArgument("parameter '" + std::string(name) + "' must be an integer from " +
                           std::to_string(min) + " to " + std::to_string(max) + ", got '" + *text +
                           "'");
  }
  return value;
}

std::string OptionalString(const Json& object, std::string_view field, std::string fallback) {
  Result<std::optional<std::string>> value = GetString(object, field);
  if (value.ok() && value->has_value() && !(*value)->empty()) return **value;
  return fallback;
}

Result<std::string> StringField(const Json& object, std::string_view field, std::string fallback) {
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> value, GetString(object, field));
  if (!value || value->empty()) return fallback;
  return std::move(*value);
}

// Upload ids are NewId()s: 32 lowercase hex digits, so one never names a path.
bool IsUploadId(std::string_view id) {
  if (id.size() != 32) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Status AppendToFile(const std::string& path, std::string_view bytes, bool create) {
  std::FILE* file = std::fopen(path.c_str(), create ? "wbx" : "ab");
  if (file == nullptr) return IoError("cannot write upload file '" + path + "'");
  size_t written = bytes.empty() ? 0 : std::fwrite(bytes.data(), 1, bytes.size(), file);
  bool ok = written == bytes.size();
  ok = (std::fclose(file) == 0) && ok;
  if (!ok) return IoError("cannot write upload file '" + path + "'");
  return Status::Ok();
}

// NotFound unless `name` is a branch (a branch without rules and no branch read alike).
Status RequireBranch(data::Repository& repository, std::string_view name) {
  KILN_ASSIGN_OR_RETURN(std::vector<data::Ref> refs, repository.ListRefs());
  for (const data::Ref& ref : refs) {
    if (ref.kind == "branch" && ref.name == name) return Status::Ok();
  }
  return NotFound("branch '" + std::string(name) + "' does not exist");
}

class DataApi {
 public:
  DataApi(data::Repository& repository, DataApiOptions options)
      : repository_(repository), options_(std::move(options)) {}

  // Adds the routes; each handler shares ownership of `api`, so it lives as long as the router.
  static void Register(const std::shared_ptr<DataApi>& api, http::Router& router) {
    using Method = Status (DataApi::*)(const http::Request&, http::Response&);
    auto handler = [&api](Method method) {
      return Wrap([api, method](const http::Request& request, http::Response& response) {
        return ((*api).*method)(request, response);
      });
    };
    auto add = [&](const char* method, std::string_view path, Method member) {
      router.Add(method, Route(path), handler(member));
    };
    auto add_prefix = [&](const char* method, std::string_view path, Method member) {
      router.AddPrefix(method, Route(path), handler(member));
    };
    add("POST", "/uploads", &DataApi::CreateUpload);
    add_prefix("POST", "/uploads/", &DataApi::AppendUpload);
    add("POST", "/commits", &DataApi::Commit);
    add_prefix("GET", "/commits/", &DataApi::GetCommit);
    add("GET", "/log", &DataApi::Log);
    add("GET", "/refs", &DataApi::Refs);
    add("POST", "/branches", &DataApi::CreateBranch);
    add_prefix("DELETE", "/branches/", &DataApi::DeleteBranch);
    add("POST", "/tags", &DataApi::CreateTag);
    add_prefix("DELETE", "/tags/", &DataApi::DeleteTag);
    add("GET", "/diff", &DataApi::Diff);
    add("POST", "/merge", &DataApi::Merge);
    add("POST", "/revert", &DataApi::Revert);
    add("GET", "/export", &DataApi::Export);
    add("GET", "/files", &DataApi::Files);
    add("GET", "/profile", &DataApi::Profile);
    add("POST", "/validate", &DataApi::Validate);
    add_prefix("GET", "/rules/", &DataApi::GetRules);
    add_prefix("PUT", "/rules/", &DataApi::PutRules);
    add_prefix("DELETE", "/rules/", &DataApi::DeleteRules);
    add("POST", "/gc", &DataApi::Gc);
    add("GET", "/fsck", &DataApi::Fsck);
  }

 private:
  std::string UploadPath(std::string_view id) const {
    return options_.uploads_dir + "/" + std::string(id);
  }

  // Removes uploads (and leftover commit folders) older than the time to live.
  void RemoveExpiredUploads() {
    std::error_code error;
    auto now = fs::file_time_type::clock::now();
    auto ttl = std::chrono::milliseconds(options_.upload_ttl_ms);
    for (fs::directory_iterator it(options_.uploads_dir, error), end; !error && it != end;
         it.increment(error)) {
      std::error_code stat_error;
      auto modified = fs::last_write_time(it->path(), stat_error);
      if (stat_error || now - modified < ttl) continue;
      std::error_code remove_error;
      fs::remove_all(it->path(), remove_error);
    }
  }

  Status CreateUpload(const http::Request& request, http::Response& response) {
    KILN_RETURN_IF_ERROR(MakeDirs(options_.uploads_dir));
    RemoveExpiredUploads();
    std::string id = NewId();
    KILN_RETURN_IF_ERROR(AppendToFile(UploadPath(id), request.body, /*create=*/true));
    WriteJson({{"upload_id", id}, {"size", request.body.size()}}, response);
    return Status::Ok();
  }

  Status AppendUpload(const http::Request& request, http::Response& response) {
    KILN_ASSIGN_OR_RETURN(std::string id, PathTail(request, Route("/uploads/"), "upload id"));
    if (!IsUploadId(id)) return NotFound("upload '" + id + "' does not exist");
    std::string path = UploadPath(id);
    std::error_code error;
    uint64_t size = fs::file_size(path, error);
    if (error) return NotFound("upload '" + id + "' does not exist (or expired)");
    KILN_ASSIGN_OR_RETURN(int64_t offset, QueryInt(request, "offset", -1, 0, INT64_MAX));
    if (offset < 0) return InvalidArgument("Missing value for required parameter 'offset'");
    if (static_cast<uint64_t>(offset) != size) {
      return Conflict("upload '" + id + "' holds " + std::to_string(size) +
                      " bytes; a part at offset " + std::to_string(offset) + " does not follow");
    }
    KILN_RETURN_IF_ERROR(AppendToFile(path, request.body, /*create=*/false));
    WriteJson({{"upload_id", id}, {"size", size + request.body.size()}}, response);
    return Status::Ok();
  }

  Status Commit(const http::Request& request, http::Response& response) {
    KILN_ASSIGN_OR_RETURN(Json body, DecodeRequest(request));
    data::CommitRequest commit;
    KILN_ASSIGN_OR_RETURN(commit.branch, StringField(body, "branch", "main"));
    KILN_ASSIGN_OR_RETURN(commit.message, StringField(body, "message", ""));
    KILN_ASSIGN_OR_RETURN(commit.author, StringField(body, "author", ""));
    KILN_ASSIGN_OR_RETURN(commit.remove, GetStringList(body, "remove"));
    const Json* inputs = nullptr;
    if (auto it = body.find("inputs"); it != body.end() && !it->is_null()) {
      if (!it->is_array()) return InvalidArgument("'inputs' must be an array");
      inputs = &*it;
    }
    // Each upload is linked under its file name in a folder of its own, since the repository
    // names tables after files; the folder goes away whatever happens. Files named
    // "<folder>/<path>" came from a folder input and are committed as that folder, which names
    // them exactly as a local commit of the folder does.
    std::string folder = options_.uploads_dir + "/commit-" + NewId();
    struct RemoveFolder {
      std::string path;
      ~RemoveFolder() { (void)RemoveAll(path); }
    } remove_folder{folder};
    std::vector<std::string> upload_ids;
    std::set<std::string> file_names;
    std::set<std::string> plain_names;
    std::map<std::string, size_t> folder_inputs;  // folder -> index in commit.inputs
    if (inputs != nullptr) {
      for (size_t i = 0; i < inputs->size(); ++i) {
        const Json& input = (*inputs)[i];
        std::string field = "inputs[" + std::to_string(i) + "]";
        if (!input.is_object()) return InvalidArgument("'" + field + "' must be an object");
        KILN_ASSIGN_OR_RETURN(std::string upload_id, RequireString(input, "upload_id"));
        KILN_ASSIGN_OR_RETURN(std::string file_name, RequireString(input, "file_name"));
        KILN_ASSIGN_OR_RETURN(std::optional<std::string> table, GetString(input, "table"));
        KILN_ASSIGN_OR_RETURN(std::optional<std::string> key, GetString(input, "key"));
        if (!IsUploadId(upload_id) || !PathExists(UploadPath(upload_id))) {
          return NotFound(field + ": upload '" + upload_id + "' does not exist (or expired)");
        }
        if (!data::IsSafeEntryPath(file_name)) {
          return InvalidArgument(field + ": invalid file_name '" + file_name +
                                 "' (a relative path without '..')");
        }
        if (!file_names.insert(file_name).second) {
          return InvalidArgument(field + ": two inputs are named '" + file_name + "'");
        }
        std::string linked = folder + "/" + file_name;
        KILN_RETURN_IF_ERROR(MakeDirs(fs::path(linked).parent_path().string()));
        std::error_code error;
        fs::create_hard_link(UploadPath(upload_id), linked, error);
        if (error) fs::copy_file(UploadPath(upload_id), linked, error);
        if (error) return IoError("cannot stage upload '" + upload_id + "': " + error.message());
        upload_ids.push_back(upload_id);

        size_t slash = file_name.find('/');
        std::string top = file_name.substr(0, slash);
        if (slash == std::string::npos ? folder_inputs.count(top) > 0 : plain_names.count(top) > 0) {
          return InvalidArgument(field + ": '" + top + "' is both a file and a folder");
        }
        if (slash != std::string::npos) {
          if (table && !table->empty()) {
            return InvalidArgument(field + ": 'table' names one file; '" + file_name +
                                   "' is part of a folder");
          }
          if (folder_inputs.count(top) > 0) continue;
          folder_inputs[top] = commit.inputs.size();
        } else {
          plain_names.insert(top);
        }
        data::CommitInput commit_input;
        commit_input.path = folder + "/" + top;
        if (table && !table->empty()) commit_input.table = std::move(table);
        if (key && !key->empty()) commit_input.key = std::move(key);
        commit.inputs.push_back(std::move(commit_input));
      }
    }
    Result<data::CommitResult> result = repository_.Commit(commit);
    if (!result.ok()) {
      // Errors name the staged file; the client knows it by its own name.
      std::string message = result.status().message();
      std::string staged = folder + "/";
      for (size_t at = message.find(staged); at != std::string::npos; at = message.find(staged)) {
        message.erase(at, staged.size());
      }
      return Status(result.status().code(), message);
    }
    for (const std::string& id : upload_ids) (void)RemoveAll(UploadPath(id));
    WriteJson(result->ToJson(), response);
    return Status::Ok();
  }

  Status GetCommit(const http::Request& request, http::Response& response) {
    KILN_ASSIGN_OR_RETURN(std::string ref, PathTail(request, Route("/commits/"), "commit"));
    KILN_ASSIGN_OR_RETURN(data::CommitInfo commit, repository_.Resolve(ref));
    WriteJson(commit.ToJson(), response);
    return Status::Ok();
  }

  Status Log(const http::Request& request, http::Response& response) {
    std::string ref = request.QueryParam("ref").value_or("");
    if (ref.empty()) ref = "main";
    KILN_ASSIGN_OR_RETURN(int64_t limit, QueryInt(request, "limit", 0, 0, kMaxLogLimit));
    if (limit == 0) limit = kMaxLogLimit;
    KILN_ASSIGN_OR_RETURN(std::vector<data::CommitInfo> commits,
                          repository_.Log(ref, static_cast<size_t>(limit)));
    Json list = Json::array();
    for (const data::CommitInfo& commit : commits) list.push_back(commit.ToJson());
    WriteJson({{"commits", std::move(list)}}, response);
    return Status::Ok();
  }

  Status Refs(const http::Request&, http::Response& response) {
    KILN_ASSIGN_OR_RETURN(std::vector<data::Ref> refs, repository_.ListRefs());
    Json list = Json::array();
    for (const data::Ref& ref : refs) list.push_back(ref.ToJson());
    WriteJson({{"refs", std::move(list)}}, response);
    return Status::Ok();
  }

  Status CreateBranch(const http::Request& request, http::Response& response) {
    KILN_ASSIGN_OR_RETURN(Json body, DecodeRequest(request));
    KILN_ASSIGN_OR_RETURN(std::string name, RequireString(body, "name"));
    KILN_ASSIGN_OR_RETURN(std::string from, StringField(body, "from", "main"));
    KILN_RETURN_IF_ERROR(repository_.CreateBranch(name, from));
    WriteJson(Json::object(), response);
    return Status::Ok();
  }

  Status DeleteBranch(const http::Request& request, http::Response& response) {
    KILN_ASSIGN_OR_RETURN(std::string name, PathTail(request, Route("/branches/"), "branch"));
    KILN_RETURN_IF_ERROR(repository_.DeleteBranch(name));
    WriteJson(Json::object(), response);
    return Status::Ok();
  }

  Status CreateTag(const http::Request& request, http::Response& response) {
    KILN_ASSIGN_OR_RETURN(Json body, DecodeRequest(request));
    KILN_ASSIGN_OR_RETURN(std::string name, RequireString(body, "name"));
    KILN_ASSIGN_OR_RETURN(std::string ref, StringField(body, "ref", "main"));
    KILN_RETURN_IF_ERROR(repository_.CreateTag(name, ref));
    WriteJson(Json::object(), response);
    return Status::Ok();
  }

  Status DeleteTag(const http::Request& request, http::Response& response) {
    KILN_ASSIGN_OR_RETURN(std::string name, PathTail(request, Route("/tags/"), "tag"));
    KILN_RETURN_IF_ERROR(repository_.DeleteTag(name));
    WriteJson(Json::object(), response);
    return Status::Ok();
  }

  Status Diff(const http::Request& request, http::Response& response) {
    KILN_ASSIGN_OR_RETURN(std::string ref_a, RequireQuery(request, "a"));
    KILN_ASSIGN_OR_RETURN(std::string ref_b, RequireQuery(request, "b"));
    KILN_ASSIGN_OR_RETURN(int64_t max_rows, QueryInt(request, "max_rows", 100, 0, kMaxDiffRows));
    KILN_ASSIGN_OR_RETURN(data::CommitInfo a, repository_.Resolve(ref_a));
    KILN_ASSIGN_OR_RETURN(data::CommitInfo b, repository_.Resolve(ref_b));
    data::DiffOptions options;
    options.max_rows = static_cast<size_t>(max_rows);
    KILN_ASSIGN_OR_RETURN(std::vector<data::TableDiff> diffs, repository_.Diff(a.id, b.id, options));
    Json tables = Json::array();
    for (const data::TableDiff& diff : diffs) tables.push_back(diff.ToJson());
    WriteJson({{"a", a.id}, {"b", b.id}, {"tables", std::move(tables)}}, response);
    return Status::Ok();
  }

  Status Merge(const http::Request& request, http::Response& response) {
    KILN_ASSIGN_OR_RETURN(Json body, DecodeRequest(request));
    data::MergeRequest merge;
    KILN_ASSIGN_OR_RETURN(merge.source, RequireString(body, "source"));
    KILN_ASSIGN_OR_RETURN(merge.into, StringField(body, "into", "main"));
    KILN_ASSIGN_OR_RETURN(merge.message, StringField(body, "message", ""));
    KILN_ASSIGN_OR_RETURN(merge.author, StringField(body, "author", ""));
    KILN_ASSIGN_OR_RETURN(std::string strategy, StringField(body, "strategy", ""));
    if (strategy == "ours") {
      merge.strategy = data::MergeStrategy::kOurs;
    } else if (strategy == "theirs") {
      merge.strategy = data::MergeStrategy::kTheirs;
    } else if (!strategy.empty() && strategy != "none") {
      return InvalidArgument("strategy must be 'ours' or 'theirs', got '" + strategy + "'");
    }
    KILN_ASSIGN_OR_RETURN(data::MergeResult result, repository_.Merge(merge));
    Json reply = result.ToJson();
    if (!result.conflicts.empty()) {
      Status conflict = Conflict("merge of '" + merge.source + "' into '" + merge.into + "' has " +
                                 std::to_string(result.conflicts.size()) +
                                 " conflict(s); nothing was changed");
      WriteDataError(conflict, response);
      reply["error_code"] = std::string(MlflowErrorCode(conflict.code()));
      reply["kiln_code"] = std::string(StatusCodeName(conflict.code()));
      reply["message"] = conflict.message();
      response.body = reply.dump(-1, ' ', false, Json::error_handler_t::replace);
      return Status::Ok();
    }
    WriteJson(reply, response);
    return Status::Ok();
  }

  Status Revert(const http::Request& request, http::Response& response) {
    KILN_ASSIGN_OR_RETURN(Json body, DecodeRequest(request));
    KILN_ASSIGN_OR_RETURN(std::string ref, RequireString(body, "ref"));
    KILN_ASSIGN_OR_RETURN(std::string branch, StringField(body, "branch", "main"));
    KILN_ASSIGN_OR_RETURN(std::string author, StringField(body, "author", ""));
    KILN_ASSIGN_OR_RETURN(data::CommitInfo commit, repository_.Revert(ref, branch, author));
    WriteJson(commit.ToJson(), response);
    return Status::Ok();
  }

  Status Export(const http::Request& request, http::Response& response) {
    KILN_ASSIGN_OR_RETURN(std::string ref, RequireQuery(request, "ref"));
    KILN_ASSIGN_OR_RETURN(std::string table, RequireQuery(request, "table"));
    std::string format_name = request.QueryParam("format").value_or("csv");
    if (format_name.empty()) format_name = "csv";
    std::optional<table::Format> format = table::FormatFromName(format_name);
    if (!format) {
      return InvalidArgument("format must be csv, tsv or jsonl, got '" + format_name + "'");
    }
    response.status = 200;
    response.content_type = *format == table::Format::kCsv   ? "text/csv; charset=utf-8"
                            : *format == table::Format::kTsv ? "text/tab-separated-values; charset=utf-8"
                                                             : "application/x-ndjson";
    // Streamed: the export is written as the repository produces it, never held whole. An
    // unknown ref or table fails before the first byte and becomes the usual error reply.
    data::Repository* repository = &repository_;
    response.Stream(
        std::nullopt,
        [repository, ref, table, format = *format](http::BodyWriter& writer) {
          return repository->Export(ref, table, format,
                                    [&writer](std::string_view bytes) { return writer.Write(bytes); });
        },
        &WriteDataError);
    return Status::Ok();
  }

  Status Files(const http::Request& request, http::Response& response) {
    KILN_ASSIGN_OR_RETURN(std::string ref, RequireQuery(request, "ref"));
    KILN_ASSIGN_OR_RETURN(std::string name, RequireQuery(request, "name"));
    response.status = 200;
    response.content_type = "application/octet-stream";
    // Streamed, as Export is.
    data::Repository* repository = &repository_;
    response.Stream(
        std::nullopt,
        [repository, ref, name](http::BodyWriter& writer) {
          return repository->ReadFile(ref, name,
                                      [&writer](std::string_view bytes) { return writer.Write(bytes); });
        },
        &WriteDataError);
    return Status::Ok();
  }

  Status Profile(const http::Request& request, http::Response& response) {
    KILN_ASSIGN_OR_RETURN(std::string ref, RequireQuery(request, "ref"));
    KILN_ASSIGN_OR_RETURN(std::string table, RequireQuery(request, "table"));
    KILN_ASSIGN_OR_RETURN(Json profile, repository_.Profile(ref, table));
    WriteJson(profile, response);
    return Status::Ok();
  }

  Status Validate(const http::Request& request, http::Response& response) {
    KILN_ASSIGN_OR_RETURN(Json body, DecodeRequest(request));
    KILN_ASSIGN_OR_RETURN(std::string ref, RequireString(body, "ref"));
    KILN_ASSIGN_OR_RETURN(std::optional<std::string> rules_text, GetString(body, "rules"));
    KILN_ASSIGN_OR_RETURN(data::CommitInfo commit, repository_.Resolve(ref));
    std::vector<data::Violation> violations;
    if (rules_text.has_value()) {
      std::string rules_name = OptionalString(body, "rules_name", "rules");
      KILN_ASSIGN_OR_RETURN(data::Rules rules, data::Rules::Parse(*rules_text, rules_name));
      KILN_ASSIGN_OR_RETURN(violations, repository_.Validate(ref, &rules));
    } else {
      KILN_ASSIGN_OR_RETURN(violations, repository_.Validate(ref, nullptr));
    }
    Json list = Json::array();
    for (const data::Violation& violation : violations) list.push_back(violation.ToJson());
    WriteJson({{"ref", commit.id}, {"violations", std::move(list)}}, response);
    return Status::Ok();
  }

  Status GetRules(const http::Request& request, http::Response& response) {
    KILN_ASSIGN_OR_RETURN(std::string branch, PathTail(request, Route("/rules/"), "branch"));
    KILN_ASSIGN_OR_RETURN(std::optional<std::string> rules, repository_.GetBranchRules(branch));
    if (!rules) KILN_RETURN_IF_ERROR(RequireBranch(repository_, branch));
    Json reply = {{"branch", branch}};
    if (rules) reply["rules"] = *rules;
    WriteJson(reply, response);
    return Status::Ok();
  }

  Status PutRules(const http::Request& request, http::Response& response) {
    KILN_ASSIGN_OR_RETURN(std::string branch, PathTail(request, Route("/rules/"), "branch"));
    KILN_ASSIGN_OR_RETURN(Json body, DecodeRequest(request));
    KILN_ASSIGN_OR_RETURN(std::string rules, RequireString(body, "rules"));
    KILN_RETURN_IF_ERROR(repository_.SetBranchRules(branch, rules));
    WriteJson(Json::object(), response);
    return Status::Ok();
  }

  Status DeleteRules(const http::Request& request, http::Response& response) {
    KILN_ASSIGN_OR_RETURN(std::string branch, PathTail(request, Route("/rules/"), "branch"));
    KILN_RETURN_IF_ERROR(repository_.SetBranchRules(branch, ""));
    WriteJson(Json::object(), response);
    return Status::Ok();
  }

  Status Gc(const http::Request& request, http::Response& response) {
    KILN_ASSIGN_OR_RETURN(Json body, DecodeRequest(request));
    data::GcOptions options;
    KILN_ASSIGN_OR_RETURN(std::optional<int64_t> retention_ms, GetInt64(body, "retention_ms"));
    KILN_ASSIGN_OR_RETURN(std::optional<bool> dry_run, GetBool(body, "dry_run"));
    if (retention_ms) {
      if (*retention_ms < 0) return InvalidArgument("retention_ms must not be negative");
      options.retention_ms = *retention_ms;
    }
    if (dry_run) options.dry_run = *dry_run;
    if (!options.dry_run) RemoveExpiredUploads();
    KILN_ASSIGN_OR_RETURN(data::GcReport report, repository_.Gc(options));
    WriteJson(report.ToJson(), response);
    return Status::Ok();
  }

  Status Fsck(const http::Request&, http::Response& response) {
    KILN_ASSIGN_OR_RETURN(data::FsckReport report, repository_.Fsck(nullptr));
    WriteJson(report.ToJson(), response);
    return Status::Ok();
  }

  data::Repository& repository_;
  DataApiOptions options_;
};

}  // namespace

void RegisterDataRoutes(http::Router& router, data::Repository& repository,
                        const DataApiOptions& options) {
  DataApi::Register(std::make_shared<DataApi>(repository, options), router);
}

}  // namespace kiln::api
