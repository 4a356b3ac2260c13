// Private to diff.cc and merge.cc: rows of changed chunks held in a compact canonical form.
//
// A row is encoded over a fixed list of target columns (by name), independent of the file's
// format and of the column order of the chunk it came from:
//
//   row  := cell*            one per target column, in target order
//   cell := 0x00             null (or a column the row does not have)
//         | 0x01 len text    len: 4 bytes little-endian; text: the cell's unescaped text
//
// Two rows are equal on a prefix of the target columns iff their encodings of that prefix are
// equal bytes; XXH3 of the encoding is the row hash for multiset matching.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kiln/core/json.h"
#include "kiln/core/status.h"
#include "kiln/data/table_version.h"
#include "kiln/table/reader.h"
#include "kiln/table/schema.h"

namespace kiln::data::internal {

// Maps a reader's columns (which may grow while reading JSONL) to target column indexes.
class ColumnMap {
 public:
  explicit ColumnMap(const std::vector<std::string>& target);
  size_t target_size() const { return target_size_; }
  // Forgets the reader's columns; call before the first row of every chunk.
  void Reset() { reader_to_target_.clear(); }
  // Encodes the reader's current row over the target columns, appending to `out`. Returns the
  // encoded size of the first `prefix` target columns in *prefix_size (if not null).
  void Encode(const table::RowReader& reader, size_t prefix, std::string* out, size_t* prefix_size);
  // The reader's current row as one cell per target column (views into the reader's buffer).
  void Cells(const table::RowReader& reader, std::vector<table::Cell>* out);
  // The cell of target column `index` in the row last passed to Encode or Cells (null: the row
  // lacks it).
  const table::Cell* target_cell(size_t index) const { return scratch_[index]; }

 private:
  void Update(const table::RowReader& reader);

  size_t target_size_;
  std::unordered_map<std::string, int> index_;
  std::vector<int> reader_to_target_;  // -1: not a target column
  std::vector<const table::Cell*> scratch_;
};

// Decodes an encoded row into one Cell per target column (views into `encoded`).
void DecodeRow(std::string_view encoded, std::vector<table::Cell>* out);

// Owns the bytes of stored rows: one allocation per megabyte instead of one per row.
class Arena {
 public:
  std::string_view Copy(std::string_view bytes);

 private:
  std::vector<std::unique_ptr<char[]>> blocks_;
  size_t used_ = 0;
  size_t capacity_ = 0;
};

// One row read from a chunk that is not shared with the other version.
struct StoredRow {
  std::string_view cells;    // the encoding above, over the side's target columns
  std::string_view key;      // the key cell: "\0" for null, "\1" + text otherwise ("" unkeyed)
  uint32_t common_size = 0;  // bytes of `cells` covering the columns both sides share
  uint32_t chunk = 0;        // index of the chunk in its version
  int64_t line = 0;
  int64_t position = 0;                 // 0-based row index in the file
  int64_t matched_line = 0;             // the line of the row it was matched with (0: none yet)
  StoredRow* next_same_hash = nullptr;  // RowIndex chain

  std::string_view common() const { return cells.substr(0, common_size); }
};

// Rows kept in their order, with their bytes.
struct RowStore {
  Arena arena;
  std::deque<StoredRow> rows;  // stable addresses
  // Copies `row` (whose views may point anywhere) into the store.
  StoredRow* Add(const StoredRow& row);
};

// An open-addressing table from a 64-bit hash to a chain of rows (linked by next_same_hash):
// one probe sequence in a flat array per lookup, where a node-based map chases pointers.
class RowIndex {
 public:
  explicit RowIndex(size_t expected_rows = 0);
  // The chain's head for `hash`, created empty if absent.
  StoredRow*& Chain(uint64_t hash);
  // The chain's head for `hash` (to walk or unlink from), or null if there is no such chain.
  StoredRow** Find(uint64_t hash);
  // Links `row` into the chain for Xxh3(row->key) unless a row with that key is there; returns
  // that row (a duplicate) or null.
  StoredRow* InsertByKey(StoredRow* row);
  // The row with key `key`, or null.
  StoredRow* FindByKey(std::string_view key);

 private:
  struct Slot {
    uint64_t hash = 0;
    StoredRow* head = nullptr;
    bool used = false;
  };
  size_t SlotFor(uint64_t hash) const;  // the slot holding `hash`, or the empty one to use
  void Grow();
  std::vector<Slot> slots_;
  size_t used_ = 0;
};

// The text shown for a key ("" for a null key).
std::string_view KeyText(std::string_view key);

// Chunks of `a` and `b` whose ids appear in both, matched as multisets (a chunk may move).
// Both false everywhere when rows of equal chunks could still differ (formats differ, or
// CSV/TSV files whose column names differ, so later chunks parse under other names).
struct SharedChunks {
  std::vector<bool> a;
  std::vector<bool> b;
};
SharedChunks FindSharedChunks(const TableVersion& a, const TableVersion& b);

// Calls on_row for every row of chunk `index` of `version` with its 0-based position in the
// file (`first_position` for the chunk's first row), after resetting `columns` for the chunk.
// The row passed is valid only during the call.
Status ForEachChunkRow(
    const TableVersion& version, size_t index, int64_t first_position, ChunkLoader& loader,
    ColumnMap& columns,
    const std::function<Status(const table::RowReader& row, int64_t position)>& on_row);

// The key cell's encoding as kept in StoredRow::key, written to *out.
void KeyOf(const table::Cell* cell, std::string* out);

// Index of the first row of every chunk (prefix sums of ChunkRef::rows).
std::vector<int64_t> ChunkStartRows(const TableVersion& version);

// A cell as JSON typed by its column: numbers for int64/float64 (NaN and infinities as strings),
// booleans, strings; null for nulls. Cells that do not parse as their type stay strings.
Json CellToJson(table::ColumnType type, const table::Cell& cell);

// An encoded row as a JSON object over `columns` (name and type per target column).
Json RowToJson(std::string_view encoded, const std::vector<table::Column>& columns);

}  // namespace kiln::data::internal
