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
//
// Multipart uploads (artifacts.h has the wire format): an upload is the folder
//   <artifact_root>/.mpu/<upload_id>/upload.json   {"path": <relative destination>, "num_parts": N}
//   <artifact_root>/.mpu/<upload_id>/part-<N>      each part, written atomically
// Complete streams the listed parts in order into a temp file beside the destination, checking
// each part's SHA-256 against its etag, then fsyncs and renames it into place: a reader sees the
// old artifact or the whole new one. The ".mpu" folder is reserved: artifact paths may not start
// with it, and the root's listing leaves it out.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "kiln/api/artifact_files.h"
#include "kiln/api/artifacts.h"
#include "kiln/api/errors.h"
#include "kiln/api/mlflow_routes.h"
#include "kiln/api/request.h"
#include "kiln/core/file_util.h"
#include "kiln/core/hash.h"
#include "kiln/core/ids.h"
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
constexpr std::string_view kMultipartPrefixes[] = {
    "/api/2.0/mlflow-artifacts/mpu",
    "/ajax-api/2.0/mlflow-artifacts/mpu",
};
constexpr std::string_view kUploadsFolder = ".mpu";  // below the artifact root; reserved
constexpr int64_t kMaxParts = 10000;                  // S3's limit, which MLflow clients expect
constexpr size_t kCopyBytes = 1024 * 1024;

// True when `relative` (normalised) is the reserved uploads folder or lies inside it.
bool IsReserved(std::string_view relative) {
  return relative == kUploadsFolder ||
         (relative.size() > kUploadsFolder.size() &&
          relative.substr(0, kUploadsFolder.size()) == kUploadsFolder &&
          relative[kUploadsFolder.size()] == '/');
}

// Upload ids are NewId()s: 32 lowercase hex digits, so one never names a path.
bool IsUploadId(std::string_view id) {
  if (id.size() != 32) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// An etag as sent back: quotes and a weak marker are dropped.
std::string_view BareEtag(std::string_view etag) {
  if (etag.substr(0, 2) == "W/") etag.remove_prefix(2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return etag;
}

// Closes a descriptor and removes a temp file unless released (the rename happened).
struct TempFile {
  std::string path;
  int fd = -1;
  bool keep = false;
  ~TempFile() {
    if (fd >= 0) ::close(fd);
    if (!keep && !path.empty()) ::unlink(path.c_str());
  }
};

Status ErrnoError(const std::string& what, const std::string& path) {
  return IoError(what + " '" + path + "': " + std::strerror(errno));
}

Status WriteAll(int fd, std::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("cannot write", path);
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

// Appends the file at `path` to `out_fd`, returning its SHA-256 in hex.
Result<std::string> AppendFile(const std::string& path, int out_fd, const std::string& out_path,
                               std::string& buffer) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open", path);
  Sha256 hasher;
  for (;;) {
    ssize_t got = ::read(fd, buffer.data(), buffer.size());
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      Status status = ErrnoError("cannot read", path);
      ::close(fd);
      return status;
    }
    if (got == 0) break;
    std::string_view bytes(buffer.data(), static_cast<size_t>(got));
    hasher.Update(bytes);
    Status written = WriteAll(out_fd, bytes, out_path);
    if (!written.ok()) {
      ::close(fd);
      return written;
    }
  }
  ::close(fd);
  return hasher.Finish().Hex();
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
    if (!relative.ok() || relative->empty() || IsReserved(*relative)) {
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
    if (relative->empty()) {  // the uploads in progress are not artifacts
      std::erase_if(entries, [](const FileEntry& entry) { return entry.name == kUploadsFolder; });
    }
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

  // POST <api>/mlflow-artifacts/mpu/create/<path> {path, num_parts}.
  Result<Json> CreateUpload(std::string_view mpu_prefix, const http::Request& request) const {
    KILN_ASSIGN_OR_RETURN(Json body, DecodeRequest(request));
    KILN_ASSIGN_OR_RETURN(std::string relative, Destination(mpu_prefix, "/create/", request, body));
    KILN_ASSIGN_OR_RETURN(std::optional<int64_t> num_parts, GetInt64(body, "num_parts"));
    if (!num_parts.has_value() || *num_parts < 1 || *num_parts > kMaxParts) {
      return InvalidArgument("num_parts must be an integer from 1 to " + std::to_string(kMaxParts));
    }
    KILN_RETURN_IF_ERROR(PrepareDestination(JoinPath(root_, relative)));
    std::string upload_id = NewId();
    std::string folder = UploadFolder(upload_id);
    KILN_RETURN_IF_ERROR(MakeDirs(folder));
    Json meta = {{"path", relative}, {"num_parts", *num_parts}};
    KILN_RETURN_IF_ERROR(WriteFileAtomic(folder + "/upload.json", meta.dump()));

    // The part URLs lead back here, on the address and API prefix the client used.
    std::string base;
    std::string_view host = request.Header("Host");
    if (!host.empty() && host.find_first_of("/\\ \r\n") == std::string_view::npos) {
      base = (request.Header("X-Forwarded-Proto") == "https" ? "https://" : "http://") +
             std::string(host);
    }
    Json credentials = Json::array();
    for (int64_t part = 1; part <= *num_parts; ++part) {
      credentials.push_back({{"part_number", part},
                             {"url", base + std::string(mpu_prefix) + "/parts/" + upload_id + "/" +
                                         std::to_string(part)},
                             {"headers", Json::object()}});
    }
    return Json{{"upload_id", upload_id}, {"credentials", std::move(credentials)}};
  }

  // PUT <api>/mlflow-artifacts/mpu/parts/<upload_id>/<part_number>: the part's raw bytes.
  void PutPart(std::string_view mpu_prefix, const http::Request& request,
               http::Response& response) const {
    Status status = [&]() -> Status {
      std::string_view tail = std::string_view(request.path).substr(mpu_prefix.size() + 7);
      size_t slash = tail.find('/');
      if (slash == std::string_view::npos) return InvalidArgument("Invalid part URL");
      std::string upload_id(tail.substr(0, slash));
      KILN_ASSIGN_OR_RETURN(Json meta, ReadUpload(upload_id));
      KILN_ASSIGN_OR_RETURN(int64_t part, PartNumber(tail.substr(slash + 1), meta));
      KILN_RETURN_IF_ERROR(WriteFileAtomic(PartPath(upload_id, part), request.body));
      WriteJson(Json::object(), response);
      response.SetHeader("ETag", "\"" + Sha256Hex(request.body) + "\"");
      return Status::Ok();
    }();
    if (!status.ok()) WriteError(status, response);
  }

  // POST <api>/mlflow-artifacts/mpu/complete/<path> {path, upload_id, parts}.
  Result<Json> CompleteUpload(std::string_view mpu_prefix, const http::Request& request) const {
    KILN_ASSIGN_OR_RETURN(Json body, DecodeRequest(request));
    KILN_ASSIGN_OR_RETURN(OpenUpload upload, FindUpload(mpu_prefix, "/complete/", request, body));
    const auto& [relative, upload_id, meta] = upload;
    if (!body.contains("parts") || !body["parts"].is_array() || body["parts"].empty()) {
      return InvalidArgument("Missing value for required parameter 'parts'");
    }
    std::vector<std::pair<int64_t, std::string>> parts;  // part number, etag
    for (const Json& part : body["parts"]) {
      if (!part.is_object()) return InvalidArgument("each of 'parts' must be an object");
      KILN_ASSIGN_OR_RETURN(std::optional<int64_t> number, GetInt64(part, "part_number"));
      KILN_ASSIGN_OR_RETURN(std::string etag, RequireString(part, "etag"));
      if (!number.has_value()) return InvalidArgument("each part needs a part_number");
      KILN_ASSIGN_OR_RETURN(int64_t checked, PartNumber(std::to_string(*number), meta));
      parts.emplace_back(checked, std::string(BareEtag(etag)));
    }
    std::sort(parts.begin(), parts.end());
    for (size_t i = 1; i < parts.size(); ++i) {
      if (parts[i].first == parts[i - 1].first) {
        return InvalidArgument("part " + std::to_string(parts[i].first) + " is listed twice");
      }
    }

    std::string full_path = JoinPath(root_, relative);
    KILN_RETURN_IF_ERROR(PrepareDestination(full_path));
    TempFile temp;
    temp.path = TempPathBeside(full_path);  // hidden from listings
    temp.fd = ::open(temp.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (temp.fd < 0) return ErrnoError("cannot create", temp.path);
    std::string buffer(kCopyBytes, '\0');
    for (const auto& [number, etag] : parts) {
      std::string part_path = PartPath(upload_id, number);
      std::error_code error;
      if (!fs::is_regular_file(part_path, error)) {
        return InvalidArgument("part " + std::to_string(number) + " of multipart upload '" +
                               upload_id + "' was never uploaded");
      }
      KILN_ASSIGN_OR_RETURN(std::string digest, AppendFile(part_path, temp.fd, temp.path, buffer));
      if (digest != etag) {
        return InvalidArgument("part " + std::to_string(number) + ": the etag '" + etag +
                               "' does not match the part uploaded");
      }
    }
    if (::fsync(temp.fd) != 0) return ErrnoError("cannot fsync", temp.path);
    ::close(temp.fd);
    temp.fd = -1;
    if (::rename(temp.path.c_str(), full_path.c_str()) != 0) {
      return ErrnoError("cannot rename onto", full_path);
    }
    temp.keep = true;
    KILN_RETURN_IF_ERROR(SyncDirectory(fs::path(full_path).parent_path().string()));
    // The artifact is in place; a leftover upload folder is only disk space.
    (void)RemoveAll(UploadFolder(upload_id));
    return Json::object();
  }

  // POST <api>/mlflow-artifacts/mpu/abort/<path> {path, upload_id}.
  Result<Json> AbortUpload(std::string_view mpu_prefix, const http::Request& request) const {
    KILN_ASSIGN_OR_RETURN(Json body, DecodeRequest(request));
    KILN_ASSIGN_OR_RETURN(OpenUpload upload, FindUpload(mpu_prefix, "/abort/", request, body));
    KILN_RETURN_IF_ERROR(RemoveAll(UploadFolder(upload.upload_id)));
    return Json::object();
  }

 private:
  std::string UploadFolder(const std::string& upload_id) const {
    return root_ + "/" + std::string(kUploadsFolder) + "/" + upload_id;
  }
  std::string PartPath(const std::string& upload_id, int64_t part) const {
    return UploadFolder(upload_id) + "/part-" + std::to_string(part);
  }

  // The artifact a multipart request is about: the folder in its URL (below the artifact root,
  // validated as the artifact PUT validates) plus the file name of the body's `path` (the
  // client's local file), as MLflow's artifact repositories place it.
  Result<std::string> Destination(std::string_view mpu_prefix, std::string_view action,
                                  const http::Request& request, const Json& body) const {
    std::string_view tail = std::string_view(request.path).substr(mpu_prefix.size() + action.size());
    KILN_ASSIGN_OR_RETURN(std::string folder, SafeRelativePath(tail));
    KILN_ASSIGN_OR_RETURN(std::string local_file, RequireString(body, "path"));
    std::string_view name = local_file;
    if (size_t slash = name.find_last_of('/'); slash != std::string_view::npos) {
      name.remove_prefix(slash + 1);
    }
    KILN_ASSIGN_OR_RETURN(std::string file_name, SafeRelativePath(name));
    if (file_name.empty() || file_name.find('/') != std::string::npos) return InvalidPath();
    std::string relative = folder.empty() ? file_name : folder + "/" + file_name;
    if (IsReserved(relative)) return InvalidPath();
    return relative;
  }

  struct OpenUpload {
    std::string relative;   // the artifact it will become
    std::string upload_id;
    Json meta;              // upload.json
  };

  // The upload a complete or abort request names, which must be for the artifact its URL and
  // body name.
  Result<OpenUpload> FindUpload(std::string_view mpu_prefix, std::string_view action,
                                const http::Request& request, const Json& body) const {
    OpenUpload upload;
    KILN_ASSIGN_OR_RETURN(upload.relative, Destination(mpu_prefix, action, request, body));
    KILN_ASSIGN_OR_RETURN(upload.upload_id, RequireString(body, "upload_id"));
    KILN_ASSIGN_OR_RETURN(upload.meta, ReadUpload(upload.upload_id));
    if (upload.meta.value("path", "") != upload.relative) {
      return InvalidArgument("multipart upload '" + upload.upload_id + "' is for another path");
    }
    return upload;
  }

  Result<Json> ReadUpload(const std::string& upload_id) const {
    if (!IsUploadId(upload_id) || !PathExists(UploadFolder(upload_id) + "/upload.json")) {
      return NotFound("multipart upload '" + upload_id.substr(0, 64) + "' does not exist");
    }
    KILN_ASSIGN_OR_RETURN(std::string text, ReadFile(UploadFolder(upload_id) + "/upload.json"));
    Json meta = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!meta.is_object()) return Internal("multipart upload '" + upload_id + "' is damaged");
    return meta;
  }

  static Result<int64_t> PartNumber(std::string_view text, const Json& meta) {
    int64_t number = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
    int64_t num_parts = meta.value("num_parts", int64_t{0});
    if (error != std::errc() || end != text.data() + text.size() || number < 1 ||
        number > num_parts) {
      return InvalidArgument("part_number must be an integer from 1 to " +
                             std::to_string(num_parts) + ", got '" +
                             std::string(text.substr(0, 32)) + "'");
    }
    return number;
  }

  // Makes the folders above `full_path` and checks that a file may be written there.
  Status PrepareDestination(const std::string& full_path) const {
    std::string parent = fs::path(full_path).parent_path().string();
    Status made = MakeDirs(parent);
    if (!made.ok()) {
      // A file where a folder is needed (the parent or any folder above it) is the client's
      // mistake; anything else is the disk's.
      return FileInTheWay(parent) ? InvalidArgument("Invalid path: a file is in the way of the folder")
                                  : made;
    }
    if (!ResolvesInside(root_, parent)) return InvalidPath();
    std::error_code error;
    if (fs::is_directory(full_path, error)) {
      return InvalidArgument("Invalid path: a folder exists at that path");
    }
    return Status::Ok();
  }

  void Put(const std::string& full_path, const std::string& body, http::Response& response) const {
    Status prepared = PrepareDestination(full_path);
    if (!prepared.ok()) {
      WriteError(prepared, response);
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
    // A path under a file names nothing, like a path that does not exist: nothing to delete.
    if (FileInTheWay(parent)) {
      WriteJson(Json::object(), response);
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
  // The UI's download link; MLflow serves it at the root, kiln also beside the ajax RPCs.
  for (const char* path : {"/get-artifact", "/ajax-api/2.0/mlflow/get-artifact"}) {
    router.Add("GET", path, [handlers](const http::Request& request, http::Response& response) {
      handlers->GetRunArtifact(request, response);
    });
  }

  for (std::string_view prefix : kMultipartPrefixes) {
    std::string mpu(prefix);
    // The JSON RPCs need the request itself (its path and Host), so they are wrapped here.
    auto rpc = [handlers, mpu](Result<Json> (ArtifactHandlers::*method)(std::string_view,
                                                                       const http::Request&) const) {
      return [handlers, mpu, method](const http::Request& request, http::Response& response) {
        Result<Json> reply = ((*handlers).*method)(mpu, request);
        if (reply.ok()) {
          WriteJson(*reply, response);
        } else {
          WriteError(reply.status(), response);
        }
      };
    };
    router.AddPrefix("POST", mpu + "/create/", rpc(&ArtifactHandlers::CreateUpload));
    router.AddPrefix("POST", mpu + "/complete/", rpc(&ArtifactHandlers::CompleteUpload));
    router.AddPrefix("POST", mpu + "/abort/", rpc(&ArtifactHandlers::AbortUpload));
    router.AddPrefix("PUT", mpu + "/parts/",
                     [handlers, mpu](const http::Request& request, http::Response& response) {
                       handlers->PutPart(mpu, request, response);
                     });
  }
}

}  // namespace kiln::api
