#include "kiln/core/file_util.h"

#include <atomic>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "kiln/core/ids.h"

namespace kiln {
namespace {

Status ErrnoStatus(const std::string& what, const std::string& path) {
  return IoError(what + " '" + path + "': " + std::strerror(errno));
}

std::string ParentDir(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

Result<std::string> ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFound("file '" + path + "' does not exist");
    return ErrnoStatus("cannot open", path);
  }
  std::string out;
  char buffer[1 << 16];
  while (true) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      Status status = ErrnoStatus("cannot read", path);
      ::close(fd);
      return status;
    }
    if (n == 0) break;
    out.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

Status SyncDirectory(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("cannot open directory", path);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return ErrnoStatus("cannot fsync directory", path);
  return Status::Ok();
}

Status SyncFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) return NotFound("'" + path + "' does not exist");
  if (fd < 0) return ErrnoStatus("cannot open", path);
  int rc = ::fdatasync(fd);
  ::close(fd);
  if (rc != 0) return ErrnoStatus("cannot fdatasync", path);
  return Status::Ok();
}

std::string TempPathBeside(const std::string& path) {
  return path + std::string(kTempMarker) + NewId().substr(0, kTempSuffixBytes - kTempMarker.size());
}

Status WriteFileAtomic(const std::string& path, std::string_view contents) {
  std::string dir = ParentDir(path);
  std::string temp = TempPathBeside(path);
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("cannot create", temp);
  size_t written = 0;
  while (written < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + written, contents.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      Status status = ErrnoStatus("cannot write", temp);
      ::close(fd);
      ::unlink(temp.c_str());
      return status;
    }
    written += static_cast<size_t>(n);
  }
  FaultPoint("atomic_write.before_fsync");
  if (::fsync(fd) != 0) {
    Status status = ErrnoStatus("cannot fsync", temp);
    ::close(fd);
    ::unlink(temp.c_str());
    return status;
  }
  ::close(fd);
  FaultPoint("atomic_write.before_rename");
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    Status status = ErrnoStatus("cannot rename onto", path);
    ::unlink(temp.c_str());
    return status;
  }
  FaultPoint("atomic_write.after_rename");
  // The rename is only durable once the directory entry is on disk.
  return SyncDirectory(dir);
}

Status MakeDirs(const std::string& path) {
  std::error_code error;
  std::filesystem::create_directories(path, error);
  if (error) return IoError("cannot create directory '" + path + "': " + error.message());
  return Status::Ok();
}

bool PathExists(const std::string& path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0;
}

bool IsDirectory(const std::string& path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
}

Status RemoveAll(const std::string& path) {
  std::error_code error;
  std::filesystem::remove_all(path, error);
  if (error) return IoError("cannot remove '" + path + "': " + error.message());
  return Status::Ok();
}

void FaultPoint(std::string_view point) {
  // "name" or "name#N" (the Nth time the point is reached, counting from 1).
  static const char* armed_env = std::getenv("KILN_FAULT");
  if (armed_env == nullptr) return;
  static const std::string_view armed = armed_env;
  static const size_t hash = armed.find('#');
  static const std::string_view armed_name = armed.substr(0, hash);
  static const long armed_hit =
      hash == std::string_view::npos ? 1 : std::strtol(armed_env + hash + 1, nullptr, 10);
  static std::atomic<long> hits{0};
  if (point == armed_name && hits.fetch_add(1) + 1 == armed_hit) {
    ::_exit(137);
  }
}

}  // namespace kiln
