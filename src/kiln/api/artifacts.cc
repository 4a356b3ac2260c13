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

constexpr size_t kMaxNameBytes = 255;     // NAME_MAX on Linux file systems
constexpr size_t kMaxPathBytes = 3000;    // well below PATH_MAX with the root prefixed

Status InvalidPath() { return InvalidArgument("Invalid path"); }

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && text.substr(0, prefix.size()) == prefix;
}

// Normalises an untrusted relative path: drops empty and "." components and rejects anything
// that could name a file outside the folder it is relative to. Returns "" for the folder itself.
Result<std::string> SafeRelativePath(std::string_view path) {
  if (path.size() > kMaxPathBytes) return InvalidPath();
  if (path.find('\0') != std::string_view::npos) return InvalidPath();
  if (path.find('\\') != std::string_view::npos) return InvalidPath();
  if (!path.empty() && path.front() == '/') return InvalidPath();
  std::string normalised;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view component = path.substr(start, slash - start);
    start = slash + 1;
    if (component.empty() || component == ".") continue;
    if (component == "..") return InvalidPath();
    // Longer names fail in the filesystem (ENAMETOOLONG); they are the request's fault.
    if (component.size() > kMaxNameBytes) return InvalidPath();
    // A client or proxy that decodes once more would turn %2e%2e or %2f into traversal.
    if (component.find('%') != std::string_view::npos) {
      std::string decoded = http::PercentDecode(component, false);
      if (decoded == ".." || decoded == "." || decoded.find('/') != std::string::npos ||
          decoded.find('\\') != std::string::npos || decoded.find('\0') != std::string::npos) {
        return InvalidPath();
      }
    }
    if (!normalised.empty()) normalised.push_back('/');
    normalised.append(component);
  }
  return normalised;
}

// True when `path` (which must exist, or whose existing ancestors are checked) resolves inside
// `root` once symlinks are followed.
bool ResolvesInside(const std::string& root, const std::string& path) {
  std::error_code error;
  fs::path canonical_root = fs::weakly_canonical(root, error);
  if (error) return false;
  fs::path canonical_path = fs::weakly_canonical(path, error);
  if (error) return false;
  auto root_it = canonical_root.begin();
  auto path_it = canonical_path.begin();
  for (; root_it != canonical_root.end(); ++root_it, ++path_it) {
    if (root_it->empty()) continue;  // a trailing separator
    if (path_it == canonical_path.end() || *path_it != *root_it) return false;
  }
  return true;
}

std::string JoinPath(const std::string& root, const std::string& relative) {
  if (relative.empty()) return root;
  return root + "/" + relative;
}

std::string_view ContentTypeFor(std::string_view name) {
  size_t dot = name.rfind('.');
  std::string_view extension = dot == std::string_view::npos ? "" : name.substr(dot + 1);
  if (extension == "json") return "application/json";
  if (extension == "txt" || extension == "log" || extension == "yaml" || extension == "yml" ||
      extension == "md" || extension == "csv" || extension == "py" || name == "MLmodel" ||
      StartsWith(name, "MLmodel")) {
    return "text/plain";
  }
  if (extension == "png") return "image/png";
  if (extension == "jpg" || extension == "jpeg") return "image/jpeg";
  if (extension == "gif") return "image/gif";
  if (extension == "svg") return "image/svg+xml";
  return "application/octet-stream";
}

// Sends the file at `full_path` as an attachment (never rendered inline on the server's origin).
void SendFile(const std::string& root, const std::string& full_path, http::Response& response) {
  if (!ResolvesInside(root, full_path)) {
    WriteError(InvalidPath(), response);
    return;
  }
  std::error_code error;
  fs::file_status status = fs::status(full_path, error);
  if (error || !fs::exists(status)) {
    WriteError(NotFound("No such file or directory: '" + fs::path(full_path).filename().string() +
                        "'"),
               response);
    return;
  }
  if (fs::is_directory(status)) {
    WriteError(InvalidArgument("'" + fs::path(full_path).filename().string() +
                               "' is a directory, not a file"),
               response);
    return;
  }
  Result<std::string> contents = ReadFile(full_path);
  if (!contents.ok()) {
    WriteError(contents.status(), response);
    return;
  }
  std::string name = fs::path(full_path).filename().string();
  response.status = 200;
  response.content_type = std::string(ContentTypeFor(name));
  response.body = std::move(*contents);
  response.SetHeader("Content-Disposition", "attachment; filename=\"" + http::PercentEncode(name) + "\"");
  response.SetHeader("X-Content-Type-Options", "nosniff");
}

struct FileEntry {
  std::string name;
  bool is_dir = false;
  int64_t file_size = 0;
};

// The entries of `directory`, sorted by name; empty when it does not exist or is a file.
std::vector<FileEntry> ListDirectory(const std::string& directory) {
  std::vector<FileEntry> entries;
  std::error_code error;
  if (!fs::is_directory(directory, error)) return entries;
  for (fs::directory_iterator it(directory, error), end; !error && it != end; it.increment(error)) {
    FileEntry entry;
    entry.name = it->path().filename().string();
    // The temp file of an atomic write in progress (core/file_util.cc: "<name>.tmp-<id>") is
    // not an artifact yet.
    if (entry.name.find(".tmp-") != std::string::npos) continue;
    std::error_code entry_error;
    entry.is_dir = it->is_directory(entry_error);
    if (!entry.is_dir) {
      auto size = it->file_size(entry_error);
      entry.file_size = entry_error ? 0 : static_cast<int64_t>(size);
    }
    entries.push_back(std::move(entry));
  }
  std::sort(entries.begin(), entries.end(),
            [](const FileEntry& a, const FileEntry& b) { return a.name < b.name; });
  return entries;
}

// FileInfo{path, is_dir, file_size}; file_size omitted for folders, as MLflow does.
Json FileInfos(const std::vector<FileEntry>& entries, const std::string& parent) {
  Json files = Json::array();
  for (const FileEntry& entry : entries) {
    Json info = {{"path", parent.empty() ? entry.name : parent + "/" + entry.name},
                 {"is_dir", entry.is_dir}};
    if (!entry.is_dir) info["file_size"] = entry.file_size;
    files.push_back(std::move(info));
  }
  return files;
}

// The local folder holding a run's artifacts, from its artifact URI.
Result<std::string> RunArtifactFolder(const std::string& artifact_uri, const std::string& root) {
  constexpr std::string_view kProxied = "mlflow-artifacts:";
  constexpr std::string_view kFile = "file://";
  if (StartsWith(artifact_uri, kProxied)) {
    std::string_view rest = std::string_view(artifact_uri).substr(kProxied.size());
    if (StartsWith(rest, "//")) {  // mlflow-artifacts://host[:port]/path
      rest.remove_prefix(2);
      size_t slash = rest.find('/');
      rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
    }
    while (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
    Result<std::string> relative = SafeRelativePath(rest);
    if (!relative.ok()) {
      return FailedPrecondition("the run's artifact URI '" + artifact_uri + "' is not servable");
    }
    return JoinPath(root, *relative);
  }
  if (StartsWith(artifact_uri, kFile)) {
    return http::PercentDecode(std::string_view(artifact_uri).substr(kFile.size()), false);
  }
  if (StartsWith(artifact_uri, "/")) return artifact_uri;
  return FailedPrecondition("artifacts at '" + artifact_uri +
                            "' are not served by this server; read them from their store directly");
}

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
    KILN_ASSIGN_OR_RETURN(std::string folder, RunArtifactFolder(run.info.artifact_uri, root_));
    std::string full_path = JoinPath(folder, relative);
    if (!ResolvesInside(folder, full_path)) return InvalidPath();
    Json body = Json::object();
    body["root_uri"] = run.info.artifact_uri;
    std::vector<FileEntry> entries = ListDirectory(full_path);
    if (!entries.empty()) body["files"] = FileInfos(entries, relative);
    return body;
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
      KILN_ASSIGN_OR_RETURN(std::string folder, RunArtifactFolder(run.info.artifact_uri, root_));
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
      // A file where a folder is needed is the client's mistake; anything else is the disk's.
      std::error_code error;
      WriteError(fs::exists(parent, error) && !fs::is_directory(parent, error)
                     ? InvalidArgument("Invalid path: a file is in the way of the folder")
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
