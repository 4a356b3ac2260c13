#include "kiln/cli/store_locator.h"

#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace kiln::cli {
namespace {

namespace fs = std::filesystem;

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

std::string Absolute(const std::string& path, const std::string& cwd) {
  fs::path p(path);
  if (p.is_relative()) p = fs::path(cwd) / p;
  return p.lexically_normal().string();
}

StoreLocation SqliteLocation(const std::string& db_path) {
  StoreLocation location;
  location.kind = StoreLocation::Kind::kLocal;
  location.uri = "sqlite://" + db_path;  // db_path is absolute: sqlite:///abs/kiln.db
  std::string folder = fs::path(db_path).parent_path().string();
  location.artifact_root = folder + "/artifacts";
  location.objects_root = folder + "/objects";
  return location;
}

Result<StoreLocation> ResolveUri(const std::string& uri, const StoreInputs& inputs) {
  if (StartsWith(uri, "http://") || StartsWith(uri, "https://")) {
    StoreLocation location;
    location.kind = StoreLocation::Kind::kRemote;
    location.uri = uri;
    while (location.uri.size() > 8 && location.uri.back() == '/') location.uri.pop_back();
    return location;
  }
  if (StartsWith(uri, "postgresql://") || StartsWith(uri, "postgres://")) {
    std::string objects = !inputs.objects_flag.empty() ? inputs.objects_flag : inputs.env_objects;
    if (objects.empty()) {
      return InvalidArgument(
          "a postgresql store needs a folder for artifacts and objects: pass --objects DIR or "
          "set $KILN_OBJECTS");
    }
    StoreLocation location;
    location.kind = StoreLocation::Kind::kLocal;
    location.uri = uri;
    std::string root = Absolute(objects, inputs.cwd);
    location.artifact_root = root + "/artifacts";
    location.objects_root = root + "/objects";
    return location;
  }
  if (StartsWith(uri, "sqlite:")) {
    std::string path = uri.substr(7);
    if (StartsWith(path, "//")) path = path.substr(2);  // sqlite:///abs -> /abs
    if (path.empty()) return InvalidArgument("store '" + uri + "' names no database file");
    return SqliteLocation(Absolute(path, inputs.cwd));
  }
  size_t scheme_end = uri.find("://");
  if (scheme_end != std::string::npos) {
    return InvalidArgument("store '" + uri + "': unsupported scheme '" + uri.substr(0, scheme_end) +
                           "' (use a path, sqlite://, postgresql:// or http://)");
  }
  // A plain path: a database file, a .kiln folder, or a project folder holding .kiln/.
  std::string path = Absolute(uri, inputs.cwd);
  std::error_code error;
  if (fs::is_directory(path, error)) {
    if (fs::exists(fs::path(path) / "kiln.db", error) || fs::path(path).filename() == ".kiln") {
      return SqliteLocation(path + "/kiln.db");
    }
    if (fs::is_directory(fs::path(path) / ".kiln", error)) {
      return SqliteLocation(path + "/.kiln/kiln.db");
    }
    return InvalidArgument("store '" + uri + "' is a folder without kiln.db or .kiln/: run `kiln init " +
                           uri + "` first");
  }
  if (fs::path(path).extension() == ".db") return SqliteLocation(path);
  return InvalidArgument("store '" + uri +
                         "' does not exist (expected a .db file, a folder with .kiln/, or a URI)");
}

}  // namespace

StoreInputs StoreInputsFromProcess(std::string store_flag, std::string objects_flag) {
  StoreInputs inputs;
  inputs.store_flag = std::move(store_flag);
  inputs.objects_flag = std::move(objects_flag);
  if (const char* value = std::getenv("KILN_STORE")) inputs.env_store = value;
  if (const char* value = std::getenv("KILN_OBJECTS")) inputs.env_objects = value;
  std::error_code error;
  inputs.cwd = fs::current_path(error).string();
  return inputs;
}

std::string FindKilnFolder(const std::string& start) {
  std::error_code error;
  fs::path folder = fs::path(start).lexically_normal();
  while (true) {
    fs::path candidate = folder / ".kiln";
    if (fs::is_directory(candidate, error)) return candidate.string();
    if (!folder.has_parent_path() || folder.parent_path() == folder) return "";
    folder = folder.parent_path();
  }
}

Result<StoreLocation> ResolveStore(const StoreInputs& inputs) {
  if (!inputs.store_flag.empty()) return ResolveUri(inputs.store_flag, inputs);
  if (!inputs.env_store.empty()) {
    Result<StoreLocation> location = ResolveUri(inputs.env_store, inputs);
    if (!location.ok()) return location.status().WithContext("$KILN_STORE");
    return location;
  }
  std::string folder = FindKilnFolder(inputs.cwd);
  if (folder.empty()) {
    return FailedPrecondition("no kiln store found: run `kiln init` or pass --store");
  }
  return SqliteLocation(folder + "/kiln.db");
}

}  // namespace kiln::cli
