// Row-aware diff of two versions of a table.
//
// Chunks present in both versions are skipped without being read (their rows are equal), so a
// diff costs about what changed. With a key column, rows are matched by key: a key only in B is
// added, only in A removed, in both with different cells changed (with the changed columns).
// Without a key, rows are matched by content (a multiset of row hashes): rows only in B are
// added, only in A removed; an added and a removed row at the same row position are reported as
// one changed row.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kiln/core/json.h"
#include "kiln/core/status.h"
#include "kiln/data/table_version.h"

namespace kiln::data {

struct SchemaChange {
  std::string column;
  std::string change;  // "added", "removed", "type"
  std::string before;  // type before ("" when added)
  std::string after;   // type after ("" when removed)
};

struct RowChange {
  std::string kind;  // "added", "removed", "changed"
  std::string key;   // the key value (keyed tables), else ""
  int64_t line_a = 0;  // line in A (removed, changed), 0 otherwise
  int64_t line_b = 0;  // line in B (added, changed)
  // Cells by column name; for "changed" only the columns that differ, as {before, after}.
  Json before;  // object or null
  Json after;   // object or null
};

struct TableDiff {
  std::string table;
  std::string status;  // "added", "removed", "modified", "unchanged"
  std::vector<SchemaChange> schema_changes;
  int64_t rows_added = 0;
  int64_t rows_removed = 0;
  int64_t rows_changed = 0;
  std::vector<RowChange> rows;  // the first DiffOptions::max_rows changes, in B's order
  bool truncated = false;       // more changes than listed
  Json ToJson() const;
};

struct DiffOptions {
  size_t max_rows = 100;
};

// a or b may be null (the table was added or removed). Both must be tables, or both files (then
// only bytes and status are compared).
Result<TableDiff> DiffTables(const TableVersion* a, const TableVersion* b, ChunkLoader& loader,
                             const DiffOptions& options = {});

}  // namespace kiln::data
