// Ingest: turns one file's bytes, appended in pieces, into a stored table (or file) version.
//
// Internal to the data layer (used by Repository for commits and merges). The bytes are cut into
// row-aligned content-defined chunks as they arrive; worker threads hash, parse and check, profile
// and store each chunk while the next ones are read, with at most a memory budget's worth of
// chunks in flight. The first chunk of a table is parsed first, on the caller's thread, to infer
// the schema every later chunk is checked against.
//
// Nothing is visible when Finish returns, and not all is durable: objects are put without fsync
// (Finish syncs the chunks while it writes the profile and manifest, to save time), and the
// caller must ObjectStore::Sync() and then record new_objects() in data_objects in the same
// transaction as the commit that uses them.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kiln/core/hash.h"
#include "kiln/core/status.h"
#include "kiln/core/thread_pool.h"
#include "kiln/data/profile.h"
#include "kiln/data/repository.h"
#include "kiln/data/table_version.h"
#include "kiln/objects/object_store.h"
#include "kiln/store/database.h"

namespace kiln::data {

// An object written by this process but not yet recorded in data_objects.
struct NewObject {
  Digest id;
  objects::ObjectInfo info;
  int depth = 0;  // delta chain length (0: not a delta)
};

// Which objects are stored (recorded in data_objects), plus those written during the current
// write operation. Thread-safe.
class ObjectIndex {
 public:
  explicit ObjectIndex(store::Database* database) : database_(database) {}

  // The object's delta depth if it is stored (or pending), else nullopt.
  Result<std::optional<int>> Depth(const Digest& id);
  // Records an object written (unsynced) during this operation; returns false if another thread
  // already claimed the id (then the caller need not write it).
  bool Claim(const Digest& id);
  void AddPending(NewObject object);
  std::vector<NewObject> TakePending();

 private:
  store::Database* database_;
  std::mutex mutex_;  // guards claimed_ and pending_
  std::unordered_map<std::string, int> claimed_;  // hex id -> depth (-1 while being written)
  std::vector<NewObject> pending_;
};

// Puts a small object (a manifest, a profile) if not stored yet, as a delta against `base` (the
// previous version's) when its chain is shorter than max_delta_depth. Returns its id.
Result<Digest> PutMetadataObject(objects::ObjectStore& objects, ObjectIndex& index,
                                 std::string_view bytes, std::optional<Digest> base,
                                 int max_delta_depth);

struct IngestTarget {
  std::string name;
  std::string file_name;
  std::optional<table::Format> format;  // nullopt: opaque bytes
  std::optional<std::string> key;
  const TableVersion* previous = nullptr;  // the table's version in the parent (delta bases)
  uint64_t expected_bytes = 0;  // the file's size when known in advance (0: unknown)
};

class Ingest {
 public:
  Ingest(objects::ObjectStore* objects, ObjectIndex* index, ThreadPool* pool,
         const RepositoryOptions* options, IngestTarget target);
  ~Ingest();
  Ingest(const Ingest&) = delete;
  Ingest& operator=(const Ingest&) = delete;

  // Appends the next bytes of the file. May block while the in-flight window is full. Returns
  // the first error found so far (later chunks may still be in flight; Finish waits for them).
  Status Append(std::string_view bytes);
  // Like Append, but the chunks borrow `bytes` instead of copying them: they must stay valid
  // (a mapped file) until Finish returns or the Ingest is destroyed.
  Status AppendMapped(std::string_view bytes);
  // Waits until no worker is using any chunk (after an error, before borrowed bytes go away).
  void Drain();
  // Cuts the last chunk, waits for every worker, checks the whole table, writes the manifest and
  // profile objects. Errors name the file, line and column of the first bad row.
  Result<TableVersion> Finish();
  const CommitStats& stats() const { return stats_; }

 private:
  struct Chunk;
  Status AppendBytes(std::string_view bytes, bool borrowed);
  // Cuts and dispatches every chunk the chunker finds at the start of `view`; *used is how many
  // bytes they took.
  Status CutFrom(std::string_view view, bool at_eof, bool borrowed, size_t* used);
  Status Dispatch(std::string_view bytes, bool borrowed);
  void Process(Chunk& chunk);
  Status CollectReady(bool wait_all);
  Status InferSchema(std::string_view first_chunk);
  // Parses, checks and profiles a chunk, or merges the saved profile of the same chunk at the
  // same line in the previous version. Worker threads.
  Status ProfileChunk(Chunk& chunk);
  // The incremental path of ProfileChunk, for a chunk whose base (the previous version's chunk at
  // the same first line) differs only in replaced lines: restores the base's saved profile, takes
  // back the old lines' rows and adds the new ones (checked, with the errors a full parse gives).
  // Returns false when it cannot give exactly the full parse's profile (then parse the chunk).
  Result<bool> ProfileEdits(Chunk& chunk);
  Status SaveChunkProfile(Chunk& chunk);
  Status Reprofile(TableVersion& version);
  // Profiles every chunk again with the schema as it is (after merging saved chunk profiles whose
  // samples, kept only below their key limits, turned out too small for this version).
  Status ProfileAllChunks(TableVersion& version);
  // The previous version's chunk a new chunk most likely edits (same first row, else the most
  // overlap at the offset where the previous match says it should be). Main thread only.
  std::optional<Digest> ChooseBase(uint64_t offset, std::string_view bytes, uint64_t anchor);

  objects::ObjectStore* objects_;
  ObjectIndex* index_;
  ThreadPool* pool_;
  const RepositoryOptions* options_;
  IngestTarget target_;
  std::unique_ptr<objects::Chunker> chunker_;
  std::string buffer_;
  size_t buffer_start_ = 0;
  uint64_t offset_ = 0;       // bytes cut so far
  int64_t next_line_ = 1;     // line number of the next chunk's first byte
  table::Schema schema_;
  bool schema_known_ = false;
  std::vector<uint64_t> previous_offsets_;  // start offset of each chunk of target_.previous
  std::unordered_map<uint64_t, size_t> previous_anchors_;  // anchor -> chunk index
  int64_t drift_ = 0;  // new offset minus previous offset at the last anchored match
  // The previous version's chunks that have a saved profile, by id (read by workers).
  std::unordered_map<std::string, const ChunkRef*> previous_by_id_;
  // Chunk profiles are saved with the sample values below these keys, per column (none: not
  // saved).
  std::optional<KeyLimits> key_limits_;
  // Chunks profiled here keep the sample values below these keys only (ProfileBuilder::
  // LimitSample): looser limits than key_limits_, so that the table's sample is exact unless
  // the table has far fewer rows (or values) than expected.
  KeyLimits sample_limits_;
  // Some chunk's profile holds only part of its sample candidates (a saved profile was merged,
  // or chunks are profiled with sample_limits_): the table's sample is checked at the end.
  bool reused_profiles_ = false;
  // The schema has only numeric and timestamp columns, whose statistics rows can be taken back
  // from (ProfileBuilder::Remove); set with the schema.
  bool edits_profilable_ = false;
  // CSV or TSV with only int64 and float64 columns, and RepositoryOptions::fused_numeric_parse:
  // chunks are profiled straight from their bytes (ProfileBuilder::AddNumericCsv) when they
  // can be; set with the schema.
  bool numeric_csv_ = false;
  objects::PutOptions compression_;  // for chunks not stored as deltas (chosen at the first)

  std::mutex mutex_;  // guards the chunks' done flags with done_
  std::condition_variable done_;
  std::vector<std::unique_ptr<Chunk>> in_flight_;  // in chunk order
  size_t window_ = 4;
  Status first_error_;
  std::unique_ptr<ProfileBuilder> profile_;
  bool needs_reprofile_ = false;
  std::vector<ChunkRef> chunks_;
  uint64_t rows_ = 0;
  CommitStats stats_;
};

}  // namespace kiln::data
