// Which store a command talks to (DESIGN.md, "Contracts every issue relies on").
//
// Resolution order: --store URI, else $KILN_STORE, else the nearest `.kiln/` folder at or above
// the current folder. A store is one of:
//   http://HOST:PORT or https://...     a remote kiln server (MLflow REST API)
//   postgresql://... or postgres://...  PostgreSQL; artifacts under --objects DIR / $KILN_OBJECTS
//   sqlite:///abs/kiln.db, sqlite:rel.db, a path ending in .db,
//   a folder holding kiln.db (a .kiln folder), or a folder holding .kiln/
// Local SQLite stores keep artifacts beside the database: <folder of kiln.db>/artifacts.
#pragma once

#include <string>

#include "kiln/core/status.h"

namespace kiln::cli {

struct StoreLocation {
  enum class Kind { kLocal, kRemote };
  Kind kind = Kind::kLocal;
  // Local: a URI for store::Database::Open (sqlite:///abs/path or postgresql://...).
  // Remote: the server's base URL without a trailing slash.
  std::string uri;
  std::string artifact_root;  // local stores only: an absolute folder
  std::string objects_root;   // local stores only: an absolute folder
};

// What resolution reads from the process, passed in so tests can pin it.
struct StoreInputs {
  std::string store_flag;    // --store
  std::string objects_flag;  // --objects
  std::string env_store;     // $KILN_STORE
  std::string env_objects;   // $KILN_OBJECTS
  std::string cwd;           // absolute
};

// Fills env_* and cwd from the process.
StoreInputs StoreInputsFromProcess(std::string store_flag, std::string objects_flag);

// No store anywhere is FailedPrecondition "no kiln store found: run `kiln init` or pass --store";
// a malformed or missing store is InvalidArgument naming it.
Result<StoreLocation> ResolveStore(const StoreInputs& inputs);

// The nearest folder named .kiln at or above `start` (absolute), or "" when there is none.
std::string FindKilnFolder(const std::string& start);

}  // namespace kiln::cli
