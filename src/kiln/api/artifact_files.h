// Files under kiln server's artifact root, shared by the proxied artifact service, the runs'
// artifacts/list and the logged models' artifact listing.
//
// Every path from a request is untrusted. SafeRelativePath() accepts only relative paths made of
// ordinary components: no absolute paths, no "..", no backslashes, no NUL, nothing that becomes
// ".." after one more percent-decoding. Callers check the file they actually open again with
// ResolvesInside(), after symlinks are resolved.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/json.h"
#include "kiln/core/status.h"
#include "kiln/http/message.h"

namespace kiln::api {

// InvalidArgument("Invalid path"), MLflow's reply to a bad artifact path.
Status InvalidPath();

// Normalises an untrusted relative path: drops empty and "." components and rejects anything
// that could name a file outside the folder it is relative to. Returns "" for the folder itself.
Result<std::string> SafeRelativePath(std::string_view path);

// True when `path` (or its existing ancestors) resolves inside `root` once symlinks are followed.
bool ResolvesInside(const std::string& root, const std::string& path);

// root + "/" + relative, or root when relative is empty.
std::string JoinPath(const std::string& root, const std::string& relative);

// The local folder an artifact URI names: "mlflow-artifacts:/<path>" (or
// "mlflow-artifacts://host/<path>") below `root`, "file://<path>", or an absolute path. Other
// schemes are FailedPrecondition: this server does not hold them.
Result<std::string> LocalArtifactFolder(const std::string& artifact_uri, const std::string& root);

// Sends the file at `full_path` (which must resolve inside `root`) as an attachment, or the
// error reply (404 when missing, 400 for a folder or a path outside `root`). The file is opened
// here and streamed in 1 MiB pieces with its Content-Length (http::Response::Stream), so a
// download of any size holds about 2 MiB of it in memory.
void SendFile(const std::string& root, const std::string& full_path, http::Response& response);

struct FileEntry {
  std::string name;
  bool is_dir = false;
  int64_t file_size = 0;
};

// The entries of `directory`, sorted by name; empty when it does not exist or is a file. The
// temp files of atomic writes in progress are left out.
std::vector<FileEntry> ListDirectory(const std::string& directory);

// MLflow's FileInfo list [{path, is_dir, file_size}], paths prefixed with `parent`; file_size is
// omitted for folders, as MLflow does.
Json FileInfos(const std::vector<FileEntry>& entries, const std::string& parent);

// {"root_uri": root_uri, "files": [...]} for the folder `relative` below the artifact URI's
// local folder; "files" is omitted when there are none (as MLflow's empty replies are).
Result<Json> ListArtifactFolder(const std::string& root_uri, const std::string& artifact_root,
                                std::string_view relative_path);

}  // namespace kiln::api
