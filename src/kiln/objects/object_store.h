// The content-addressed object store: chunks, manifests and profiles of data commits.
//
// An object is named by the SHA-256 of its raw (decoded) bytes and stored once, at
// ROOT/ab/cdef... (the first two hex digits are the folder). On disk an object is:
//
//   object  := magic(4) "KOB1" | encoding(1) | raw_size(u64 LE) | [base(32)] | payload
//   encoding:= 0 raw bytes | 1 zstd frame | 2 zstd frame compressed with the base object's raw
//              bytes as prefix (ZSTD_CCtx_refPrefix), so it holds only what differs from base
//              | 3 line delta: a zstd frame of whole lines copied from the base plus the new
//              lines' bytes (the body grammar is in line_delta.h)
//              | 4 packed nibbles: bytes of at most 16 distinct values, two 4-bit codes per byte,
//              with their symbol table and an XXH3 checksum (the grammar is in nibble_pack.h)
//   base    := present for encodings 2 and 3 (the deltas)
//
// Deltas chain (a base may itself be a delta of either kind); the caller bounds the depth.
// Put chooses the line delta for text whose lines are mostly the base's (a few rows edited,
// inserted or deleted): it costs a memory compare (~0.1 ms per MB) where zstd's long-distance
// matching costs 3-6 ms per MB. Callers must treat any object with ObjectInfo::base set as a
// delta. Any object can be a base, whatever its encoding: bases are used by their raw bytes.
//
// Packed nibbles (4) are for numeric text (digits, '.', ',', '-', '\n', 'e'): exactly 2.0x at
// 2-3 GB/s each way on one core, where zstd's Huffman-coded literals give about 2.2x at
// 0.2-0.4 GB/s. Put uses them only when asked (PutOptions::pack_nibbles, which
// ChooseCompression sets) and never for a delta.
//
// Durability: Put() writes a temp file and renames it into place without fsync; Sync() makes
// every object put since the last Sync durable (an fdatasync of each when they are few, else one
// syncfs; then the touched folders' fsyncs),
// and the caller acknowledges nothing (records no object in metadata) before Sync() returns.
// A crash can therefore leave complete-looking files whose bytes never reached the disk: the
// metadata, not the folder, says which objects exist, and Verify() checks the bytes.
//
// Thread safety: Put, Get, Stat and Verify may run concurrently from several threads (commits
// put chunks from a worker pool); so may Sync, which makes durable at least every object whose
// Put returned before it started (a commit syncs its chunks while it writes its profile); Remove
// must not race a Put of the same id (gc holds the data write lock).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "kiln/core/hash.h"
#include "kiln/core/status.h"

namespace kiln::objects {

enum class Encoding : uint8_t {
  kRaw = 0,
  kZstd = 1,
  kZstdDelta = 2,
  kLineDelta = 3,
  kPackedNibbles = 4,
};

struct ObjectInfo {
  Digest id;
  Encoding encoding = Encoding::kRaw;
  uint64_t raw_size = 0;
  uint64_t stored_size = 0;    // file size on disk
  std::optional<Digest> base;  // the deltas (kZstdDelta, kLineDelta) only
};

struct PutOptions {
  int zstd_level = 1;
  // Huffman-code literals even at negative levels, where zstd otherwise stores them raw. For
  // text of few distinct bytes (numeric CSV) level -10 with it keeps level 1's size at about
  // twice the speed; see ChooseCompression.
  bool literal_compression = false;
  // Store as a delta against this object, which must exist: a line delta (kLineDelta) when at
  // least half of the bytes are whole lines of the base, else zstd with the base as prefix
  // (kZstdDelta; never much larger than plain zstd, and far smaller when the two share most
  // bytes). Either way the result has ObjectInfo::base set. The caller bounds chain depth.
  std::optional<Digest> base;
  std::string_view base_raw;  // the base's raw bytes, if the caller has them (saves a Get)
  // false: a delta is always kZstdDelta (to compare the two; the choice is otherwise automatic).
  bool allow_line_delta = true;
  // Store as packed nibbles (kPackedNibbles) when `raw` uses at most 16 distinct byte values and
  // that is smaller than raw; otherwise (more values: later chunks of a file can differ from
  // the sample ChooseCompression saw) as zstd at zstd_level, as if this were false. Ignored
  // when `base` is set: deltas are always kZstdDelta or kLineDelta.
  bool pack_nibbles = false;
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // A local folder (created if missing).
  static Result<std::unique_ptr<ObjectStore>> OpenLocal(const std::string& root);

  // Stores `raw` under `id` (= Sha256Of(raw), which the caller computed; asserted in debug).
  // If an object file with that id already exists it is replaced (its bytes may be from a
  // crashed, unsynced write). Returns what was written.
  virtual Result<ObjectInfo> Put(const Digest& id, std::string_view raw,
                                 const PutOptions& options = {}) = 0;
  virtual Status Sync() = 0;

  // The raw bytes of `id`, resolving delta bases. NotFound if missing; Internal if corrupt
  // (bad header, zstd error, or with verify=true a hash mismatch).
  virtual Result<std::string> Get(const Digest& id, bool verify = false) = 0;
  virtual Result<ObjectInfo> Stat(const Digest& id) = 0;
  virtual bool Exists(const Digest& id) = 0;
  // Decodes and rehashes; Internal naming the object and what is wrong.
  virtual Status Verify(const Digest& id) = 0;
  virtual Status Remove(const Digest& id) = 0;

  // Every object file (ids only; temp files are skipped), with its size and modification time in
  // milliseconds since the epoch.
  virtual Status ForEach(
      const std::function<Status(const Digest& id, uint64_t stored_size, int64_t mtime_ms)>& fn) = 0;
  // Removes temp files left by crashed writers that are older than `older_than_ms`.
  virtual Status RemoveStaleTemps(int64_t older_than_ms) = 0;

  virtual const std::string& root() const = 0;
};

// The compression for objects like `sample` (the first chunk of a file): level -10 with
// Huffman-coded literals when that stores `sample` within 5% of `level`'s size, else `level`.
// Then packed nibbles on top (pack_nibbles, with that zstd choice as the fallback) when the
// sample uses at most 16 distinct byte values and zstd does not beat packing's 2.0x by more than
// 10% (zstd's size >= 0.9 x the packed size): numeric CSV packs, repetitive digits (all zeros)
// keep zstd. A first line that alone brings in more values (a CSV header of column names) is
// not held against packing: the object holding it falls back to zstd in Put. Decided by sizes
// only, so the same input always gets the same choice.
PutOptions ChooseCompression(std::string_view sample, int level);

}  // namespace kiln::objects
