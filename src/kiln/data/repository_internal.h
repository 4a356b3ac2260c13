// Pieces of the repository shared by repository.cc (commits, refs, reads) and maintenance.cc
// (gc, fsck). Internal to the data layer.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/core/thread_pool.h"
#include "kiln/data/repository.h"
#include "kiln/objects/object_store.h"
#include "kiln/store/database.h"

namespace kiln::data::internal {

// Loads chunk bytes from the object store.
class StoreChunkLoader : public ChunkLoader {
 public:
  explicit StoreChunkLoader(objects::ObjectStore* objects) : objects_(objects) {}
  Result<std::string> Load(const Digest& id) override { return objects_->Get(id); }

 private:
  objects::ObjectStore* objects_;
};

// The exclusive lock every writer of data (commit, merge, revert, gc) holds: an flock on
// OBJECTS/.lock, so it covers other processes on the same folder, and it is released by the
// kernel if the holder dies.
class WriteLock {
 public:
  static Result<std::unique_ptr<WriteLock>> Acquire(const std::string& objects_root);
  ~WriteLock();
  WriteLock(const WriteLock&) = delete;
  WriteLock& operator=(const WriteLock&) = delete;

 private:
  explicit WriteLock(int fd) : fd_(fd) {}
  int fd_;
};

// Reads a manifest object into version->chunks (and checks its rows and bytes).
Status LoadManifest(objects::ObjectStore& objects, TableVersion* version);

// Commit rows as stored (entries without chunks).
Result<std::optional<CommitInfo>> LoadCommit(store::Transaction& tx, const std::string& id);

Result<GcReport> CollectGarbage(store::Database& database, objects::ObjectStore& objects,
                                const GcOptions& options, int64_t now_ms);
Result<FsckReport> CheckRepository(store::Database& database, objects::ObjectStore& objects,
                                   ThreadPool& pool, const Progress& progress);

}  // namespace kiln::data::internal
