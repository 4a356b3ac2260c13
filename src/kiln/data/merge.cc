// Three-way merge of one table.
//
// JSON form of a MergeConflict (MergeConflict::ToJson):
//
//   {"table": NAME, "key": TEXT, "reason": REASON, "ours": VALUE, "theirs": VALUE}
//
// A row conflict (key non-empty, or a null key) has VALUE = the side's whole row as an object
// column -> value typed by that side's schema (as in a diff's rows), or null where that side
// removed the row. A table-level conflict (key "") has VALUE = a summary of the side's version,
//   {"rows": N, "bytes": N, "manifest": HEX, "columns": [NAME, ...]},
// or null where that side removed the table.
//
// How a keyed merge works: each side is compared with the base by key, reading only the chunks
// it does not share with the base (as multisets of chunk ids, like a diff). Their changes
// (added, changed, removed keys) are held in memory as encoded rows. Theirs' changes that do
// not conflict (or that a strategy resolves to theirs) are then applied while streaming ours in
// order: rows of ours' chunks shared with the base are parsed and written straight through,
// rows of its other chunks come from memory. Rows theirs added (or changed where ours removed
// them and kTheirs resolved it) follow in theirs' order. Every row is written by
// table::RowWriter in ours' format, so the output may be quoted differently from the input.
#include "kiln/data/merge.h"

#include <deque>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "kiln/data/diff_internal.h"
#include "kiln/table/writer.h"

namespace kiln::data {
namespace {

using internal::ColumnMap;
using internal::StoredRow;

constexpr size_t kFlushBytes = 1 << 20;

bool SameVersion(const TableVersion* x, const TableVersion* y) {
  if (x == nullptr || y == nullptr) return x == y;
  return x->manifest == y->manifest && x->format == y->format && x->key == y->key &&
         x->schema == y->schema;
}

TableMerge Take(const TableVersion* side, TableMerge::Outcome outcome) {
  TableMerge merge;
  merge.outcome = side != nullptr ? outcome : TableMerge::Outcome::kRemoved;
  return merge;
}

Json Summary(const TableVersion* version) {
  if (version == nullptr) return nullptr;
  Json columns = Json::array();
  for (const table::Column& column : version->schema.columns) columns.push_back(column.name);
  return {{"rows", version->rows},
          {"bytes", version->bytes},
          {"manifest", version->manifest.Hex()},
          {"columns", std::move(columns)}};
}

std::vector<std::string> ColumnNames(const table::Schema& schema) {
  std::vector<std::string> names;
  for (const table::Column& column : schema.columns) names.push_back(column.name);
  return names;
}

// The type both sides' values fit, if the types are compatible.
std::optional<table::ColumnType> CommonType(table::ColumnType a, table::ColumnType b) {
  using table::ColumnType;
  if (a == b) return a;
  auto either = [&](ColumnType x, ColumnType y) {
    return (a == x && b == y) || (a == y && b == x);
  };
  if (either(ColumnType::kInt64, ColumnType::kFloat64)) return ColumnType::kFloat64;
  if (either(ColumnType::kString, ColumnType::kCategorical)) return ColumnType::kString;
  return std::nullopt;
}

// Ours' schema with each column's type widened to hold theirs' values too; nullopt if a column's
// types cannot be reconciled.
std::optional<table::Schema> MergedSchema(const table::Schema& ours, const table::Schema& theirs) {
  table::Schema merged = ours;
  for (size_t i = 0; i < merged.columns.size(); ++i) {
    std::optional<table::ColumnType> type =
        CommonType(ours.columns[i].type, theirs.columns[i].type);
    if (!type) return std::nullopt;
    merged.columns[i].type = *type;
    merged.columns[i].nullable = ours.columns[i].nullable || theirs.columns[i].nullable;
  }
  return merged;
}

// A side's edit of one key relative to the base.
struct Change {
  enum class Kind { kAdded, kChanged, kRemoved };
  Kind kind = Kind::kChanged;
  const StoredRow* row = nullptr;  // the side's row; null when removed
};

// Rows a side holds in chunks it does not share with the base, and its changes by key.
struct SideRows {
  std::string label;  // "ours", "theirs", "the merge base"
  const TableVersion* version = nullptr;
  std::vector<bool> shared;       // the side's chunks shared with the base
  std::vector<bool> base_shared;  // the base's chunks shared with this side
  internal::RowStore store;       // in the side's order
  internal::RowIndex by_key;
  std::vector<std::pair<std::string_view, Change>> changes;  // in the side's order, then removals
  std::unordered_map<std::string_view, Change> change_by_key;
};

class KeyedMerge {
 public:
  KeyedMerge(std::string table, const TableVersion* base, const TableVersion& ours,
             const TableVersion& theirs, table::Schema merged_schema, ChunkLoader& loader,
             MergeStrategy strategy)
      : table_(std::move(table)),
        merged_schema_(std::move(merged_schema)),
        names_(ColumnNames(ours.schema)),
        loader_(loader),
        strategy_(strategy) {
    if (base != nullptr) {
      base_.version = base;
    } else {
      // Both sides added the table: merge against an empty base.
      empty_base_.name = ours.name;
      empty_base_.file_name = ours.file_name;
      empty_base_.format = ours.format;
      empty_base_.schema = ours.schema;
      empty_base_.key = ours.key;
      base_.version = &empty_base_;
    }
    base_.label = "the merge base";
    ours_.label = "ours";
    ours_.version = &ours;
    theirs_.label = "theirs";
    theirs_.version = &theirs;
    key_index_ = ours.schema.Find(*ours.key);
  }

  Result<TableMerge> Run(const std::function<Status(std::string_view bytes)>& write) {
    for (SideRows* side : {&ours_, &theirs_}) {
      internal::SharedChunks shared = internal::FindSharedChunks(*base_.version, *side->version);
      side->base_shared = std::move(shared.a);
      side->shared = std::move(shared.b);
    }
    // The base's rows in every chunk some side does not share.
    std::vector<bool> base_skip(base_.version->chunks.size());
    for (size_t i = 0; i < base_skip.size(); ++i) {
      base_skip[i] = ours_.base_shared[i] && theirs_.base_shared[i];
    }
    KILN_RETURN_IF_ERROR(Collect(base_, base_skip));
    KILN_RETURN_IF_ERROR(Collect(ours_, ours_.shared));
    KILN_RETURN_IF_ERROR(Collect(theirs_, theirs_.shared));
    KILN_RETURN_IF_ERROR(FindChanges(ours_));
    KILN_RETURN_IF_ERROR(FindChanges(theirs_));

    TableMerge merge;
    Resolve(&merge.conflicts);
    if (!merge.conflicts.empty()) {
      merge.outcome = TableMerge::Outcome::kConflict;
      return merge;
    }
    if (apply_.empty()) {
      merge.outcome = TableMerge::Outcome::kTakeOurs;
      return merge;
    }
    KILN_RETURN_IF_ERROR(Write(write));
    merge.outcome = TableMerge::Outcome::kMerged;
    return merge;
  }

 private:
  Status DuplicateKey(const SideRows& side, std::string_view key, const std::string& first,
                      int64_t second) const {
    return InvalidArgument("table '" + table_ + "': key '" + std::string(internal::KeyText(key)) +
                           "' appears twice in " + side.label + " (" + first + " and line " +
                           std::to_string(second) + ")");
  }

  // Reads the rows of `side`'s chunks not marked in `skip`, indexing them by key.
  Status Collect(SideRows& side, const std::vector<bool>& skip) {
    const TableVersion& version = *side.version;
    ColumnMap columns(names_);
    std::vector<int64_t> starts = internal::ChunkStartRows(version);
    for (size_t i = 0; i < version.chunks.size(); ++i) {
      if (skip[i]) continue;
      KILN_RETURN_IF_ERROR(internal::ForEachChunkRow(
          version, i, starts[i], loader_, columns,
          [&](const table::RowReader& reader, int64_t position) -> Status {
            scratch_cells_.clear();
            columns.Encode(reader, names_.size(), &scratch_cells_, nullptr);
            internal::KeyOf(columns.target_cell(key_index_), &scratch_key_);
            StoredRow read;
            read.cells = scratch_cells_;
            read.key = scratch_key_;
            read.common_size = static_cast<uint32_t>(scratch_cells_.size());
            read.chunk = static_cast<uint32_t>(i);
            read.line = reader.line();
            read.position = position;
            StoredRow* row = side.store.Add(read);
            if (StoredRow* first = side.by_key.InsertByKey(row)) {
              return DuplicateKey(side, row->key, "line " + std::to_string(first->line), row->line);
            }
            return Status::Ok();
          }));
    }
    return Status::Ok();
  }

  Status FindChanges(SideRows& side) {
    auto add = [&](std::string_view key, Change change) {
      side.changes.emplace_back(key, change);
      side.change_by_key.emplace(key, change);
    };
    for (const StoredRow& row : side.store.rows) {
      const StoredRow* found = base_.by_key.FindByKey(row.key);
      if (found == nullptr) {
        add(row.key, {Change::Kind::kAdded, &row});
        continue;
      }
      const StoredRow& before = *found;
      if (side.base_shared[before.chunk]) {
        // The base row sits in a chunk this side also has: the key is there twice.
        return DuplicateKey(side, row.key, "a line of a chunk shared with the merge base",
                            row.line);
      }
      if (before.cells != row.cells) add(row.key, {Change::Kind::kChanged, &row});
    }
    for (const StoredRow& before : base_.store.rows) {
      if (side.base_shared[before.chunk]) continue;
      if (side.by_key.FindByKey(before.key) == nullptr) {
        add(before.key, {Change::Kind::kRemoved, nullptr});
      }
    }
    return Status::Ok();
  }

  Json RowJson(const StoredRow* row, const TableVersion& version) const {
    if (row == nullptr) return nullptr;
    return internal::RowToJson(row->cells, version.schema.columns);
  }

  // Decides theirs' changes: apply_ gets those to make to ours (null row: remove the key).
  void Resolve(std::vector<MergeConflict>* conflicts) {
    for (const auto& [key, theirs] : theirs_.changes) {
      auto found = ours_.change_by_key.find(key);
      if (found == ours_.change_by_key.end()) {
        apply_.emplace(key, theirs.row);
        continue;
      }
      const Change& ours = found->second;
      if (ours.row == nullptr && theirs.row == nullptr) continue;  // both removed
      if (ours.row != nullptr && theirs.row != nullptr && ours.row->cells == theirs.row->cells) {
        continue;  // the same edit on both sides
      }
      if (strategy_ == MergeStrategy::kOurs) continue;
      if (strategy_ == MergeStrategy::kTheirs) {
        apply_.emplace(key, theirs.row);
        continue;
      }
      MergeConflict conflict;
      conflict.table = table_;
      conflict.key = std::string(internal::KeyText(key));
      if (ours.kind == Change::Kind::kAdded && theirs.kind == Change::Kind::kAdded) {
        conflict.reason = "both added";
      } else if (ours.row == nullptr || theirs.row == nullptr) {
        conflict.reason = "changed and removed";
      } else {
        conflict.reason = "both changed";
      }
      conflict.ours = RowJson(ours.row, *ours_.version);
      conflict.theirs = RowJson(theirs.row, *theirs_.version);
      conflicts->push_back(std::move(conflict));
    }
  }

  Status Write(const std::function<Status(std::string_view bytes)>& write) {
    table::RowWriter writer(*ours_.version->format, merged_schema_);
    std::string out;
    writer.WriteHeader(&out);
    std::vector<table::Cell> cells;
    auto flush = [&](bool last) -> Status {
      if (out.empty() || (!last && out.size() < kFlushBytes)) return Status::Ok();
      Status status = write(out);
      out.clear();
      return status;
    };
    auto write_stored = [&](const StoredRow& row) {
      internal::DecodeRow(row.cells, &cells);
      writer.WriteRow(cells, &out);
    };
    // Writes ours' row for `key` (by `write_ours`) or what theirs' change makes of it.
    auto place = [&](std::string_view key, const std::function<void()>& write_ours) {
      auto found = apply_.find(key);
      if (found == apply_.end()) {
        write_ours();
        return;
      }
      if (found->second != nullptr) write_stored(*found->second);
      apply_.erase(found);
    };

    const TableVersion& ours = *ours_.version;
    std::vector<int64_t> starts = internal::ChunkStartRows(ours);
    ColumnMap columns(names_);
    size_t next_stored = 0;
    std::string key;
    for (size_t i = 0; i < ours.chunks.size(); ++i) {
      if (ours_.shared[i]) {
        KILN_RETURN_IF_ERROR(internal::ForEachChunkRow(
            ours, i, starts[i], loader_, columns,
            [&](const table::RowReader& reader, int64_t) -> Status {
              columns.Cells(reader, &cells);
              internal::KeyOf(columns.target_cell(key_index_), &key);
              if (const StoredRow* duplicate = ours_.by_key.FindByKey(key)) {
                return DuplicateKey(ours_, key, "line " + std::to_string(duplicate->line),
                                    reader.line());
              }
              place(key, [&] { writer.WriteRow(cells, &out); });
              return flush(false);
            }));
        continue;
      }
      const std::deque<StoredRow>& stored = ours_.store.rows;
      for (; next_stored < stored.size() && stored[next_stored].chunk == i; ++next_stored) {
        const StoredRow& row = stored[next_stored];
        place(row.key, [&] { write_stored(row); });
        KILN_RETURN_IF_ERROR(flush(false));
      }
    }
    // What theirs added, or kept where ours removed it, in theirs' order.
    for (const StoredRow& row : theirs_.store.rows) {
      auto found = apply_.find(row.key);
      if (found == apply_.end() || found->second != &row) continue;
      write_stored(row);
      apply_.erase(found);
      KILN_RETURN_IF_ERROR(flush(false));
    }
    return flush(true);
  }

  std::string table_;
  table::Schema merged_schema_;
  std::vector<std::string> names_;
  ChunkLoader& loader_;
  MergeStrategy strategy_;
  int key_index_ = -1;
  TableVersion empty_base_;
  std::string scratch_cells_;
  std::string scratch_key_;
  SideRows base_;
  SideRows ours_;
  SideRows theirs_;
  std::unordered_map<std::string_view, const StoredRow*> apply_;
};

}  // namespace

Json MergeConflict::ToJson() const {
  return {{"table", table}, {"key", key}, {"reason", reason}, {"ours", ours}, {"theirs", theirs}};
}

Result<TableMerge> MergeTable(const TableVersion* base, const TableVersion* ours,
                              const TableVersion* theirs, ChunkLoader& loader,
                              MergeStrategy strategy,
                              const std::function<Status(std::string_view bytes)>& write) {
  using Outcome = TableMerge::Outcome;
  if (SameVersion(ours, theirs) || SameVersion(base, theirs)) return Take(ours, Outcome::kTakeOurs);
  if (SameVersion(base, ours)) return Take(theirs, Outcome::kTakeTheirs);

  // Both sides changed the table, differently.
  const TableVersion* named = ours != nullptr ? ours : theirs;
  const std::string table = named->name;
  auto table_conflict = [&](std::string reason) -> TableMerge {
    if (strategy == MergeStrategy::kOurs) return Take(ours, Outcome::kTakeOurs);
    if (strategy == MergeStrategy::kTheirs) return Take(theirs, Outcome::kTakeTheirs);
    TableMerge merge;
    merge.outcome = Outcome::kConflict;
    merge.conflicts.push_back({table, "", std::move(reason), Summary(ours), Summary(theirs)});
    return merge;
  };
  if (ours == nullptr || theirs == nullptr) return table_conflict("changed and removed");
  const std::string both_changed = base != nullptr ? "table changed on both sides" : "both added";
  if (!ours->is_table() || !theirs->is_table() || (base != nullptr && !base->is_table())) {
    return table_conflict(both_changed);
  }
  // A row-level merge needs one key and the same columns on every side.
  const bool keyed = ours->key && theirs->key == ours->key &&
                     (base == nullptr || base->key == ours->key) &&
                     ours->schema.Find(*ours->key) >= 0;
  const std::vector<std::string> names = ColumnNames(ours->schema);
  if (!keyed || ColumnNames(theirs->schema) != names ||
      (base != nullptr && ColumnNames(base->schema) != names)) {
    return table_conflict(both_changed);
  }
  std::optional<table::Schema> schema = MergedSchema(ours->schema, theirs->schema);
  if (!schema) return table_conflict(both_changed);
  KeyedMerge merge(table, base, *ours, *theirs, std::move(*schema), loader, strategy);
  return merge.Run(write);
}

}  // namespace kiln::data
