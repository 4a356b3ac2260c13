// Proxied artifacts: MLflow's mlflow-artifacts service plus the tracking API's artifacts/list and
// the UI's get-artifact, over files under the server's artifact root.
//
// Layout: <artifact_root>/<experiment_id>/<run_id>/artifacts/<path>, which is where a run's
// artifact URI "mlflow-artifacts:/<experiment_id>/<run_id>/artifacts" points.
//
// Every path from a request is untrusted. SafeRelativePath() accepts only relative paths made of
// ordinary components: no absolute paths, no "..", no backslashes, no NUL, nothing that becomes
// ".." after one more percent-decoding. Paths are checked after the HTTP layer's decoding (so
// %2e%2e and %2f arrive as ".." and "/"), and the file actually opened is checked again, after
// resolving symlinks, to lie inside the root.
#include <algorithm>
#include <filesystem>
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
#include "kiln/core/file_util.h"
#include "kiln/core/json.h"
#include "kiln/http/message.h"
#include "kiln/http/router.h"
#include "kiln/tracking/tracking_store.h"

namespace kiln::api {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kArtifactServicePrefixes[] = {
    "/api/2.0/mlflow-artifacts/artifacts",
    "/ajax-api/2.0/mlflow-artifacts/artifacts",
};

Result<std::string> RunIdFrom(const Json& request) {
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> run_id, GetString(request, "run_id"));
  if (run_id.has_value() && !run_id->empty()) return std::move(*run_id);
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> run_uuid, GetString(request, "run_uuid"));
  if (run_uuid.has_value() && !run_uuid->empty()) return std::move(*run_uuid);
  return RequireString(request, "run_id");  // yields MLflow's missing-value message
}

// ---------------------------------------------------------------------------------------------

class ArtifactHandlers {
 public:
  ArtifactHandlers(tracking::TrackingStore* tracking, std::string root)
      : tracking_(tracking), root_(std::move(root)) {}

  // GET/PUT/DELETE <prefix>/<path>.
  void File(std::string_view prefix, const http::Request& request, http::Response& response) const {
    std::string_view raw = std::string_view(request.path).substr(prefix.size() + 1);
    Result<std::string> relative = SafeRelativePath(raw);
    if (!relative.ok() || relative->empty()) {
      WriteError(InvalidPath(), response);
      return;
    }
    std::string full_path = JoinPath(root_, *relative);
    if (request.method == "PUT") {
      Put(full_path, request.body, response);
    } else if (request.method == "DELETE") {
      Delete(full_path, response);
    } else {
      SendFile(root_, full_path, response);
    }
  }

  // GET <prefix>?path=<dir>: {"files": [...]}, paths being names inside <dir>.
  void List(const http::Request& request, http::Response& response) const {
    Result<std::string> relative = SafeRelativePath(request.QueryParam("path").value_or(""));
    if (!relative.ok()) {
      WriteError(relative.status(), response);
      return;
    }
    std::string full_path = JoinPath(root_, *relative);
    if (!ResolvesInside(root_, full_path)) {
      WriteError(InvalidPath(), response);
      return;
    }
    Json body = Json::object();
    std::vector<FileEntry> entries = ListDirectory(full_path);
    if (!entries.empty()) body["files"] = FileInfos(entries, "");
    WriteJson(body, response);
  }

  // GET /api/2.0/mlflow/artifacts/list?run_id=&path=: {"root_uri", "files"}, paths relative to
  // the run's artifact root.
  Result<Json> ListRunArtifacts(const Json& request) const {
    KILN_ASSIGN_OR_RETURN(std::string run_id, RunIdFrom(request));
    KILN_ASSIGN_OR_RETURN(std::optional<std::string> path, GetString(request, "path"));
    KILN_ASSIGN_OR_RETURN(std::string relative, SafeRelativePath(path.value_or("")));
    KILN_ASSIGN_OR_RETURN(tracking::Run run, tracking_->GetRun(run_id));
    return ListArtifactFolder(run.info.artifact_uri, root_, relative);
  }

  // GET /get-artifact?run_id=&path=: one file of a run (the UI's download link).
  void GetRunArtifact(const http::Request& request, http::Response& response) const {
    Result<Json> decoded = DecodeRequest(request);
    if (!decoded.ok()) {
      WriteError(decoded.status(), response);
      return;
    }
    Status status = [&]() -> Status {
      KILN_ASSIGN_OR_RETURN(std::string run_id, RunIdFrom(*decoded));
      KILN_ASSIGN_OR_RETURN(std::string path, RequireString(*decoded, "path"));
      KILN_ASSIGN_OR_RETURN(std::string relative, SafeRelativePath(path));
      if (relative.empty()) return InvalidPath();
      KILN_ASSIGN_OR_RETURN(tracking::Run run, tracking_->GetRun(run_id));
      KILN_ASSIGN_OR_RETURN(std::string folder, LocalArtifactFolder(run.info.artifact_uri, root_));
      SendFile(folder, JoinPath(folder, relative), response);
      return Status::Ok();
    }();
    if (!status.ok()) WriteError(status, response);
  }

 private:
  void Put(const std::string& full_path, const std::string& body, http::Response& response) const {
    std::string parent = fs::path(full_path).parent_path().string();
    Status made = MakeDirs(parent);
    if (!made.ok()) {
      // A file where a folder is needed (the parent or any folder above it) is the client's
      // mistake; anything else is the disk's.
      WriteError(FileInTheWay(parent) ? InvalidArgument("Invalid path: a file is in the way of "
                                                        "the folder")
                                      : made,
                 response);
      return;
    }
    if (!ResolvesInside(root_, parent)) {
      WriteError(InvalidPath(), response);
      return;
    }
    std::error_code error;
    if (fs::is_directory(full_path, error)) {
      WriteError(InvalidArgument("Invalid path: a folder exists at that path"), response);
      return;
    }
    Status written = WriteFileAtomic(full_path, body);
    if (!written.ok()) {
      WriteError(written, response);
      return;
    }
    WriteJson(Json::object(), response);
  }

  // True when `folder` or one of its ancestors below the root exists and is not a folder.
  bool FileInTheWay(const std::string& folder) const {
    std::error_code error;
    for (fs::path at(folder); !at.empty() && at.string().size() > root_.size();
         at = at.parent_path()) {
      if (fs::exists(at, error) && !fs::is_directory(at, error)) return true;
    }
    return false;
  }

  void Delete(const std::string& full_path, http::Response& response) const {
    std::string parent = fs::path(full_path).parent_path().string();
    if (!ResolvesInside(root_, parent)) {
      WriteError(InvalidPath(), response);
      return;
    }
    Status removed = RemoveAll(full_path);
    if (!removed.ok()) {
      WriteError(removed, response);
      return;
    }
    WriteJson(Json::object(), response);
  }

  tracking::TrackingStore* tracking_;
  std::string root_;
};

}  // namespace

void RegisterArtifactRoutes(http::Router& router, tracking::TrackingStore& tracking,
                            const std::string& artifact_root) {
  std::string root = artifact_root;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  auto handlers = std::make_shared<const ArtifactHandlers>(&tracking, root);

  for (std::string_view prefix : kArtifactServicePrefixes) {
    std::string prefix_string(prefix);
    http::Handler file_handler = [handlers, prefix_string](const http::Request& request,
                                                           http::Response& response) {
      handlers->File(prefix_string, request, response);
    };
    for (const char* method : {"GET", "PUT", "DELETE"}) {
      router.AddPrefix(method, prefix_string + "/", file_handler);
    }
    router.Add("GET", prefix_string,
               [handlers](const http::Request& request, http::Response& response) {
                 handlers->List(request, response);
               });
  }

  AddMlflowRoute(router, "GET", "/artifacts/list", JsonHandler([handlers](const Json& request) {
                   return handlers->ListRunArtifacts(request);
                 }));
  router.Add("GET", "/get-artifact",
             [handlers](const http::Request& request, http::Response& response) {
               handlers->GetRunArtifact(request, response);
             });
}

}  // namespace kiln::api
