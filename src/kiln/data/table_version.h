// One version of one table or file as stored in a data commit, and how to read its chunks.
//
// A version is an ordered list of chunks (content-addressed objects); concatenated they are the
// file's exact bytes. For tables every chunk holds whole rows; the first chunk starts with the
// header (CSV/TSV). The manifest that lists the chunks is itself an object, whose JSON is:
//
//   {"format": "csv"|"tsv"|"jsonl"|"bytes", "rows": N, "bytes": N,
//    "chunks": [{"id": HEX64, "size": N, "rows": N, "first_line": N, "anchor": N,
//                "stats": HEX64 (optional)}, ...]}
//
// "stats" names the chunk's saved partial profile (ProfileBuilder::Serialize), so that the next
// version, if it holds the same chunk at the same first line, merges it instead of parsing it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/hash.h"
#include "kiln/core/json.h"
#include "kiln/core/status.h"
#include "kiln/table/format.h"
#include "kiln/table/reader.h"
#include "kiln/table/schema.h"

namespace kiln::data {

struct ChunkRef {
  Digest id;
  uint64_t size = 0;        // raw bytes
  uint64_t rows = 0;        // data rows (the header is not a row)
  int64_t first_line = 1;   // line number of the chunk's first byte in the file
  // XXH3 of the chunk's first row (at most its first 256 bytes): the next version's commit
  // finds "the same" chunk by it, to store a changed chunk as a delta against its predecessor.
  uint64_t anchor = 0;
  std::optional<Digest> stats;  // the chunk's saved partial profile (tables; may be absent)
};

struct TableVersion {
  std::string name;       // the table name (a file's stem), or an opaque file's file name
  std::string file_name;  // what checkout writes: "credit.csv", "images/cat.png"
  std::optional<table::Format> format;      // nullopt: an opaque file (bytes)
  table::Schema schema;                     // empty for opaque files
  std::optional<std::string> key;           // the key column, if the table has one
  uint64_t rows = 0;
  uint64_t bytes = 0;
  std::vector<ChunkRef> chunks;
  Digest manifest;                          // the object listing the chunks
  std::optional<Digest> profile;            // the stored profile object (tables)

  bool is_table() const { return format.has_value(); }
};

// Reads chunks' raw bytes. Implementations may be called from several threads.
class ChunkLoader {
 public:
  virtual ~ChunkLoader() = default;
  virtual Result<std::string> Load(const Digest& id) = 0;
};

// True if `path` may name a table or file inside a commit (and so be written under a checkout
// folder): relative, at most 4096 bytes, no empty, "." or ".." parts, no backslash or NUL.
bool IsSafeEntryPath(std::string_view path);

// ReadOptions for parsing chunk `index` of `version` (header only in the first; later chunks
// get the schema's column names).
table::ReadOptions ChunkReadOptions(const TableVersion& version, size_t index);

// Calls `on_row` for every row of the table, chunk by chunk, in order; stops at the first error
// (from reading or from on_row). Memory: one chunk at a time.
Status ForEachRow(const TableVersion& version, ChunkLoader& loader,
                  const std::function<Status(const table::RowReader& row)>& on_row);

}  // namespace kiln::data
