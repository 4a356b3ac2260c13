#include "kiln/api/artifact_files.h"

#include <fcntl.h>
#include <simdjson.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

#include "kiln/api/errors.h"
#include "kiln/core/file_util.h"

namespace kiln::api {
namespace {

namespace fs = std::filesystem;

// NAME_MAX on Linux file systems, less the suffix of the temp file an atomic write makes beside
// the final name.
constexpr size_t kMaxNameBytes = 255 - kTempSuffixBytes;
constexpr size_t kMaxPathBytes = 3000;    // well below PATH_MAX with the root prefixed
constexpr size_t kDownloadPieceBytes = 1024 * 1024;  // read and sent a piece at a time

// An open file descriptor, closed with its last owner (a streamed reply's producer).
struct OpenFile {
  int fd = -1;
  OpenFile() = default;
  OpenFile(const OpenFile&) = delete;
  OpenFile& operator=(const OpenFile&) = delete;
  ~OpenFile() {
    if (fd >= 0) ::close(fd);
  }
};


bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && text.substr(0, prefix.size()) == prefix;
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

}  // namespace

Status InvalidPath() { return InvalidArgument("Invalid path"); }

// Normalises an untrusted relative path: drops empty and "." components and rejects anything
// that could name a file outside the folder it is relative to. Returns "" for the folder itself.
Result<std::string> SafeRelativePath(std::string_view path) {
  if (path.size() > kMaxPathBytes) return InvalidPath();
  if (path.find('\0') != std::string_view::npos) return InvalidPath();
  if (path.find('\\') != std::string_view::npos) return InvalidPath();
  if (!path.empty() && path.front() == '/') return InvalidPath();
  // Names go back to clients in JSON (listings, multipart uploads), which holds only UTF-8.
  if (!simdjson::validate_utf8(path.data(), path.size())) return InvalidPath();
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
  // Opened now, so that the reply is the file as it is at this moment: an atomic replacement
  // (a new inode renamed over it) while it streams does not mix two versions.
  auto file = std::make_shared<OpenFile>();
  file->fd = ::open(full_path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat info {};
  if (file->fd < 0 || ::fstat(file->fd, &info) != 0) {
    WriteError(IoError("cannot open '" + fs::path(full_path).filename().string() +
                       "': " + std::strerror(errno)),
               response);
    return;
  }
  if (!S_ISREG(info.st_mode)) {
    WriteError(InvalidArgument("'" + fs::path(full_path).filename().string() +
                               "' is not a regular file"),
               response);
    return;
  }
  std::string name = fs::path(full_path).filename().string();
  const auto size = static_cast<uint64_t>(info.st_size);
  response.status = 200;
  response.content_type = std::string(ContentTypeFor(name));
  response.Stream(
      size,
      [file, size, name](http::BodyWriter& writer) -> Status {
        std::string piece(static_cast<size_t>(std::min<uint64_t>(size, kDownloadPieceBytes)), '\0');
        uint64_t offset = 0;
        while (offset < size) {
          size_t want = static_cast<size_t>(std::min<uint64_t>(size - offset, piece.size()));
          ssize_t got = ::pread(file->fd, piece.data(), want, static_cast<off_t>(offset));
          if (got < 0 && errno == EINTR) continue;
          if (got < 0) return IoError("cannot read '" + name + "': " + std::strerror(errno));
          if (got == 0) return IoError("'" + name + "' shrank while it was being sent");
          KILN_RETURN_IF_ERROR(writer.Write(std::string_view(piece.data(), static_cast<size_t>(got))));
          offset += static_cast<uint64_t>(got);
        }
        return Status::Ok();
      },
      [](const Status& status, http::Response& reply) { WriteError(status, reply); });
  response.SetHeader("Content-Disposition", "attachment; filename=\"" + http::PercentEncode(name) + "\"");
  response.SetHeader("X-Content-Type-Options", "nosniff");
}

// The entries of `directory`, sorted by name; empty when it does not exist or is a file.
std::vector<FileEntry> ListDirectory(const std::string& directory) {
  std::vector<FileEntry> entries;
  std::error_code error;
  if (!fs::is_directory(directory, error)) return entries;
  for (fs::directory_iterator it(directory, error), end; !error && it != end; it.increment(error)) {
    FileEntry entry;
    entry.name = it->path().filename().string();
    // The temp file of an atomic write in progress (TempPathBeside) is not an artifact yet.
    if (entry.name.find(kTempMarker) != std::string::npos) continue;
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

Result<std::string> LocalArtifactFolder(const std::string& artifact_uri, const std::string& root) {
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
      return FailedPrecondition("the artifact URI '" + artifact_uri + "' is not servable");
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

Result<Json> ListArtifactFolder(const std::string& root_uri, const std::string& artifact_root,
                                std::string_view relative_path) {
  KILN_ASSIGN_OR_RETURN(std::string relative, SafeRelativePath(relative_path));
  KILN_ASSIGN_OR_RETURN(std::string folder, LocalArtifactFolder(root_uri, artifact_root));
  std::string full_path = JoinPath(folder, relative);
  if (!ResolvesInside(folder, full_path)) return InvalidPath();
  Json body = Json::object();
  body["root_uri"] = root_uri;
  std::vector<FileEntry> entries = ListDirectory(full_path);
  if (!entries.empty()) body["files"] = FileInfos(entries, relative);
  return body;
}

}  // namespace kiln::api
