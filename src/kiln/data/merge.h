// Three-way merge of one table.
//
// Given the versions at the merge base, ours (the branch merged into) and theirs (the branch
// merged from):
// - if only one side changed the table (by manifest), take that side;
// - keyed tables: apply both sides' row edits to the base by key. A key changed on both sides to
//   different rows, deleted on one side and changed on the other, or added on both sides with
//   different rows, is a conflict reported with both values; Strategy kOurs / kTheirs resolve
//   every conflict to that side instead. Rows come out in ours' order, then theirs' additions in
//   theirs' order.
// - unkeyed tables changed on both sides differently: one table-level conflict (or the chosen
//   side, with a strategy).
// - schema: the columns must agree (same names and order) unless a strategy picks a side; a
//   column type may widen (int64 -> float64).
// Memory: the changed rows of both sides (rows in chunks shared with the base are not read).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "kiln/core/json.h"
#include "kiln/core/status.h"
#include "kiln/data/table_version.h"

namespace kiln::data {

enum class MergeStrategy { kNone, kOurs, kTheirs };

struct MergeConflict {
  std::string table;
  std::string key;     // "" for a table-level conflict
  std::string reason;  // "both changed", "changed and removed", "both added", "table changed on both sides"
  Json ours;           // the row (object) or null when removed; table-level: a summary
  Json theirs;
  Json ToJson() const;
};

// What the merge decided for one table.
struct TableMerge {
  enum class Outcome { kTakeOurs, kTakeTheirs, kRemoved, kMerged, kConflict };
  Outcome outcome = Outcome::kTakeOurs;
  std::vector<MergeConflict> conflicts;  // kConflict
  // kMerged: the merged file's bytes in ours' format (header first), written through this sink
  // in pieces so the caller can chunk them as they come.
};

// base/ours/theirs may be null where the table does not exist on that side. For kMerged the
// merged bytes are passed to `write` in order.
Result<TableMerge> MergeTable(const TableVersion* base, const TableVersion* ours,
                              const TableVersion* theirs, ChunkLoader& loader,
                              MergeStrategy strategy,
                              const std::function<Status(std::string_view bytes)>& write);

}  // namespace kiln::data
