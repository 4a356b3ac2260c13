// Row-aware diff of two table versions.
//
// JSON form of a TableDiff (TableDiff::ToJson):
//
//   {"table": NAME, "status": "added"|"removed"|"modified"|"unchanged",
//    "schema_changes": [{"column": NAME, "change": "added"|"removed"|"type",
//                        "before": TYPE|"", "after": TYPE|""}, ...],
//    "rows_added": N, "rows_removed": N, "rows_changed": N,
//    "rows": [{"kind": "added"|"removed"|"changed", "key": TEXT, "line_a": N, "line_b": N,
//              "before": ROW|null, "after": ROW|null}, ...],
//    "truncated": BOOL}
//
// ROW is an object column -> value typed by that side's schema (int64/float64 as numbers, NaN
// and infinities as "NaN"/"Infinity"/"-Infinity", bool as true/false, other types as strings,
// nulls as null). Added rows carry every column of B in "after", removed rows every column of A
// in "before"; changed rows only the columns that differ (among the columns both sides have).
// line_a/line_b are 0 where the row has no line on that side; "key" is "" for unkeyed tables.
//
// How rows are compared: cells as text (nulls distinct from ""), on the columns both versions
// have. Chunks whose ids appear in both versions (as multisets: a chunk may move) hold equal
// rows and are never loaded, unless the two versions are CSV/TSV with different column names
// (a chunk without the header parses under each version's names) or are in different formats.
// Only rows of the other chunks are held: A's as encoded rows, B's streamed past them.
//
// Order of `rows`: by row position (0-based row index in its file), B's position for added and
// changed rows and A's for removed ones, a removed row before others at the same position.
// With a key, a duplicate key among the rows read is an InvalidArgument naming table, key and
// lines (duplicates inside chunks both versions share are not read and not detected).
#include "kiln/data/diff.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <unordered_map>
#include <utility>

#include "kiln/core/hash.h"
#include "kiln/data/diff_internal.h"
#include "kiln/table/inference.h"

namespace kiln::data {
namespace internal {

ColumnMap::ColumnMap(const std::vector<std::string>& target) : target_size_(target.size()) {
  for (size_t i = 0; i < target.size(); ++i) index_.emplace(target[i], static_cast<int>(i));
  scratch_.assign(target_size_, nullptr);
}

void ColumnMap::Update(const table::RowReader& reader) {
  const std::vector<std::string>& names = reader.column_names();
  while (reader_to_target_.size() < names.size()) {
    auto found = index_.find(names[reader_to_target_.size()]);
    reader_to_target_.push_back(found == index_.end() ? -1 : found->second);
  }
}

void ColumnMap::Encode(const table::RowReader& reader, size_t prefix, std::string* out,
                       size_t* prefix_size) {
  Update(reader);
  std::fill(scratch_.begin(), scratch_.end(), nullptr);
  const std::vector<table::Cell>& cells = reader.cells();
  for (size_t i = 0; i < cells.size() && i < reader_to_target_.size(); ++i) {
    if (reader_to_target_[i] >= 0) scratch_[reader_to_target_[i]] = &cells[i];
  }
  const size_t start = out->size();
  for (size_t t = 0; t < target_size_; ++t) {
    if (t == prefix && prefix_size != nullptr) *prefix_size = out->size() - start;
    const table::Cell* cell = scratch_[t];
    if (cell == nullptr || cell->is_null) {
      out->push_back('\0');
      continue;
    }
    const auto size = static_cast<uint32_t>(cell->text.size());
    const char header[5] = {
        '\1', static_cast<char>(size & 0xff), static_cast<char>((size >> 8) & 0xff),
        static_cast<char>((size >> 16) & 0xff), static_cast<char>((size >> 24) & 0xff)};
    out->append(header, sizeof(header));
    out->append(cell->text);
  }
  if (prefix >= target_size_ && prefix_size != nullptr) *prefix_size = out->size() - start;
}

void ColumnMap::Cells(const table::RowReader& reader, std::vector<table::Cell>* out) {
  Update(reader);
  std::fill(scratch_.begin(), scratch_.end(), nullptr);
  out->assign(target_size_, table::Cell{std::string_view(), true, false});
  const std::vector<table::Cell>& cells = reader.cells();
  for (size_t i = 0; i < cells.size() && i < reader_to_target_.size(); ++i) {
    if (reader_to_target_[i] >= 0) {
      (*out)[reader_to_target_[i]] = cells[i];
      scratch_[reader_to_target_[i]] = &cells[i];
    }
  }
}

void DecodeRow(std::string_view encoded, std::vector<table::Cell>* out) {
  out->clear();
  size_t at = 0;
  while (at < encoded.size()) {
    if (encoded[at] == '\0') {
      out->push_back(table::Cell{std::string_view(), true, false});
      ++at;
      continue;
    }
    uint32_t size = 0;
    for (int i = 0; i < 4; ++i) {
      size |= static_cast<uint32_t>(static_cast<unsigned char>(encoded[at + 1 + i])) << (8 * i);
    }
    out->push_back(table::Cell{encoded.substr(at + 5, size), false, false});
    at += 5 + size;
  }
}

std::string_view KeyText(std::string_view key) { return key.empty() ? key : key.substr(1); }

void KeyOf(const table::Cell* cell, std::string* out) {
  out->clear();
  if (cell == nullptr || cell->is_null) {
    out->push_back('\0');
    return;
  }
  out->push_back('\1');
  out->append(cell->text);
}

std::string_view Arena::Copy(std::string_view bytes) {
  static constexpr size_t kBlockBytes = 1 << 20;
  if (bytes.empty()) return {};
  if (capacity_ - used_ < bytes.size()) {
    capacity_ = std::max(kBlockBytes, bytes.size());
    blocks_.push_back(std::make_unique_for_overwrite<char[]>(capacity_));
    used_ = 0;
  }
  char* at = blocks_.back().get() + used_;
  std::memcpy(at, bytes.data(), bytes.size());
  used_ += bytes.size();
  return std::string_view(at, bytes.size());
}

StoredRow* RowStore::Add(const StoredRow& row) {
  StoredRow& stored = rows.emplace_back(row);
  stored.cells = arena.Copy(row.cells);
  stored.key = arena.Copy(row.key);
  stored.next_same_hash = nullptr;
  return &stored;
}

RowIndex::RowIndex(size_t expected_rows) {
  size_t capacity = 16;
  while (capacity < expected_rows * 2) capacity <<= 1;
  slots_.resize(capacity);
}

size_t RowIndex::SlotFor(uint64_t hash) const {
  const size_t mask = slots_.size() - 1;
  size_t i = hash & mask;
  while (slots_[i].used && slots_[i].hash != hash) i = (i + 1) & mask;
  return i;
}

void RowIndex::Grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(old.size() * 2, Slot());
  for (const Slot& slot : old) {
    if (slot.used) slots_[SlotFor(slot.hash)] = slot;
  }
}

StoredRow*& RowIndex::Chain(uint64_t hash) {
  if ((used_ + 1) * 2 > slots_.size()) Grow();
  Slot& slot = slots_[SlotFor(hash)];
  if (!slot.used) {
    slot.used = true;
    slot.hash = hash;
    ++used_;
  }
  return slot.head;
}

StoredRow** RowIndex::Find(uint64_t hash) {
  Slot& slot = slots_[SlotFor(hash)];
  return slot.used ? &slot.head : nullptr;
}

StoredRow* RowIndex::InsertByKey(StoredRow* row) {
  StoredRow*& head = Chain(Xxh3(row->key));
  for (StoredRow* other = head; other != nullptr; other = other->next_same_hash) {
    if (other->key == row->key) return other;
  }
  row->next_same_hash = head;
  head = row;
  return nullptr;
}

StoredRow* RowIndex::FindByKey(std::string_view key) {
  StoredRow** head = Find(Xxh3(key));
  for (StoredRow* row = head != nullptr ? *head : nullptr; row != nullptr;
       row = row->next_same_hash) {
    if (row->key == key) return row;
  }
  return nullptr;
}

namespace {

std::vector<std::string> ColumnNames(const table::Schema& schema) {
  std::vector<std::string> names;
  names.reserve(schema.columns.size());
  for (const table::Column& column : schema.columns) names.push_back(column.name);
  return names;
}

}  // namespace

SharedChunks FindSharedChunks(const TableVersion& a, const TableVersion& b) {
  SharedChunks shared{std::vector<bool>(a.chunks.size(), false),
                      std::vector<bool>(b.chunks.size(), false)};
  if (!a.format || !b.format || *a.format != *b.format) return shared;
  if (*a.format != table::Format::kJsonl && ColumnNames(a.schema) != ColumnNames(b.schema)) {
    return shared;
  }
  // Unmatched positions of each id in B, in order; a cursor per id.
  std::map<Digest, std::pair<std::vector<size_t>, size_t>> b_by_id;
  for (size_t j = 0; j < b.chunks.size(); ++j) b_by_id[b.chunks[j].id].first.push_back(j);
  for (size_t i = 0; i < a.chunks.size(); ++i) {
    auto found = b_by_id.find(a.chunks[i].id);
    if (found == b_by_id.end()) continue;
    auto& [positions, next] = found->second;
    if (next == positions.size()) continue;
    shared.a[i] = true;
    shared.b[positions[next++]] = true;
  }
  return shared;
}

Status ForEachChunkRow(
    const TableVersion& version, size_t index, int64_t first_position, ChunkLoader& loader,
    ColumnMap& columns,
    const std::function<Status(const table::RowReader& row, int64_t position)>& on_row) {
  KILN_ASSIGN_OR_RETURN(std::string bytes, loader.Load(version.chunks[index].id));
  KILN_ASSIGN_OR_RETURN(
      std::unique_ptr<table::RowReader> reader,
      table::RowReader::Open(*version.format, bytes, ChunkReadOptions(version, index)));
  columns.Reset();
  int64_t position = first_position;
  while (true) {
    KILN_ASSIGN_OR_RETURN(bool more, reader->Next());
    if (!more) break;
    KILN_RETURN_IF_ERROR(on_row(*reader, position++));
  }
  return Status::Ok();
}

std::vector<int64_t> ChunkStartRows(const TableVersion& version) {
  std::vector<int64_t> starts;
  starts.reserve(version.chunks.size());
  int64_t rows = 0;
  for (const ChunkRef& chunk : version.chunks) {
    starts.push_back(rows);
    rows += static_cast<int64_t>(chunk.rows);
  }
  return starts;
}

Json CellToJson(table::ColumnType type, const table::Cell& cell) {
  if (cell.is_null) return nullptr;
  switch (type) {
    case table::ColumnType::kInt64: {
      Result<int64_t> value = table::ParseInt64(cell.text);
      if (value.ok()) return Json(*value);
      break;
    }
    case table::ColumnType::kFloat64: {
      Result<double> value = table::ParseFloat64(cell.text);
      if (value.ok()) return DoubleToJson(*value);
      break;
    }
    case table::ColumnType::kBool: {
      Result<bool> value = table::ParseBool(cell.text);
      if (value.ok()) return Json(*value);
      break;
    }
    default: break;
  }
  return Json(std::string(cell.text));
}

Json RowToJson(std::string_view encoded, const std::vector<table::Column>& columns) {
  std::vector<table::Cell> cells;
  DecodeRow(encoded, &cells);
  Json row = Json::object();
  for (size_t i = 0; i < cells.size() && i < columns.size(); ++i) {
    row[columns[i].name] = CellToJson(columns[i].type, cells[i]);
  }
  return row;
}

}  // namespace internal

namespace {

using internal::ColumnMap;
using internal::StoredRow;

bool SameChunkIds(const TableVersion& a, const TableVersion& b) {
  if (a.chunks.size() != b.chunks.size()) return false;
  for (size_t i = 0; i < a.chunks.size(); ++i) {
    if (a.chunks[i].id != b.chunks[i].id) return false;
  }
  return true;
}

std::vector<SchemaChange> CompareSchemas(const table::Schema& a, const table::Schema& b) {
  std::vector<SchemaChange> changes;
  for (const table::Column& column : a.columns) {
    int in_b = b.Find(column.name);
    if (in_b < 0) {
      changes.push_back(
          {column.name, "removed", std::string(table::ColumnTypeName(column.type)), ""});
    } else if (b.columns[in_b].type != column.type) {
      changes.push_back({column.name, "type", std::string(table::ColumnTypeName(column.type)),
                         std::string(table::ColumnTypeName(b.columns[in_b].type))});
    }
  }
  for (const table::Column& column : b.columns) {
    if (a.Find(column.name) < 0) {
      changes.push_back(
          {column.name, "added", "", std::string(table::ColumnTypeName(column.type))});
    }
  }
  return changes;
}

// One side of a diff: its target columns are the common columns (in A's order), then its own.
struct Side {
  const TableVersion* version = nullptr;
  std::vector<table::Column> columns;
  std::vector<std::string> names;
  std::vector<bool> shared;
  std::vector<int64_t> starts;
};

// A listed change with the position it sorts by.
struct Listed {
  int64_t position = 0;
  bool removed = false;
  RowChange change;
};

class RowDiffer {
 public:
  RowDiffer(const TableVersion& a, const TableVersion& b, ChunkLoader& loader,
            const DiffOptions& options, TableDiff* diff)
      : loader_(loader), options_(options), diff_(diff) {
    a_.version = &a;
    b_.version = &b;
    for (const table::Column& column : a.schema.columns) {
      if (b.schema.Find(column.name) >= 0) {
        a_.columns.push_back(column);
        b_.columns.push_back(b.schema.columns[b.schema.Find(column.name)]);
      }
    }
    common_ = a_.columns.size();
    for (const table::Column& column : a.schema.columns) {
      if (b.schema.Find(column.name) < 0) a_.columns.push_back(column);
    }
    for (const table::Column& column : b.schema.columns) {
      if (a.schema.Find(column.name) < 0) b_.columns.push_back(column);
    }
    for (Side* side : {&a_, &b_}) {
      for (const table::Column& column : side->columns) side->names.push_back(column.name);
      side->starts = internal::ChunkStartRows(*side->version);
    }
    internal::SharedChunks shared = internal::FindSharedChunks(a, b);
    a_.shared = std::move(shared.a);
    b_.shared = std::move(shared.b);
    std::optional<std::string> key = b.key ? b.key : a.key;
    if (key) {
      for (size_t i = 0; i < common_; ++i) {
        if (a_.columns[i].name == *key) key_index_ = static_cast<int>(i);
      }
    }
  }

  Status Run() {
    KILN_RETURN_IF_ERROR(CollectA());
    if (key_index_ >= 0) {
      KILN_RETURN_IF_ERROR(DiffKeyed());
    } else {
      KILN_RETURN_IF_ERROR(DiffUnkeyed());
    }
    Finish();
    return Status::Ok();
  }

 private:
  // Reads every row of `side`'s unshared chunks; on_row gets each (valid during the call).
  Status ForEachUnsharedRow(Side& side, const std::function<Status(const StoredRow& row)>& on_row) {
    ColumnMap columns(side.names);
    for (size_t i = 0; i < side.version->chunks.size(); ++i) {
      if (side.shared[i]) continue;
      KILN_RETURN_IF_ERROR(internal::ForEachChunkRow(
          *side.version, i, side.starts[i], loader_, columns,
          [&](const table::RowReader& reader, int64_t position) -> Status {
            scratch_cells_.clear();
            size_t common_size = 0;
            columns.Encode(reader, common_, &scratch_cells_, &common_size);
            if (key_index_ >= 0) {
              internal::KeyOf(columns.target_cell(key_index_), &scratch_key_);
            }
            StoredRow row;
            row.cells = scratch_cells_;
            row.key = scratch_key_;
            row.common_size = static_cast<uint32_t>(common_size);
            row.chunk = static_cast<uint32_t>(i);
            row.line = reader.line();
            row.position = position;
            return on_row(row);
          }));
    }
    return Status::Ok();
  }

  Status CollectA() {
    return ForEachUnsharedRow(a_, [&](const StoredRow& row) -> Status {
      a_rows_.Add(row);
      return Status::Ok();
    });
  }

  Status DuplicateKey(std::string_view version, std::string_view key, int64_t first,
                      int64_t second) const {
    return InvalidArgument("table '" + diff_->table + "': key '" +
                           std::string(internal::KeyText(key)) + "' appears twice in version " +
                           std::string(version) + " (lines " + std::to_string(first) + " and " +
                           std::to_string(second) + ")");
  }

  Status DiffKeyed() {
    internal::RowIndex a_by_key(a_rows_.rows.size());
    for (StoredRow& row : a_rows_.rows) {
      if (StoredRow* first = a_by_key.InsertByKey(&row)) {
        return DuplicateKey("A", row.key, first->line, row.line);
      }
    }
    std::unordered_map<std::string, int64_t> added_lines;  // keys only in B: duplicates
    KILN_RETURN_IF_ERROR(ForEachUnsharedRow(b_, [&](const StoredRow& row) -> Status {
      if (StoredRow* before = a_by_key.FindByKey(row.key)) {
        if (before->matched_line != 0) {
          return DuplicateKey("B", row.key, before->matched_line, row.line);
        }
        before->matched_line = row.line;
        if (before->common() == row.common()) return Status::Ok();
        ++diff_->rows_changed;
        if (b_listed_.size() < options_.max_rows) b_listed_.push_back(Changed(*before, row));
        return Status::Ok();
      }
      auto [seen, inserted] = added_lines.emplace(row.key, row.line);
      if (!inserted) return DuplicateKey("B", row.key, seen->second, row.line);
      ++diff_->rows_added;
      if (b_listed_.size() < options_.max_rows) b_listed_.push_back(Added(row));
      return Status::Ok();
    }));
    for (const StoredRow& row : a_rows_.rows) {
      if (row.matched_line != 0) continue;
      ++diff_->rows_removed;
      if (a_listed_.size() < options_.max_rows) a_listed_.push_back(Removed(row));
    }
    return Status::Ok();
  }

  Status DiffUnkeyed() {
    // Chains of unmatched A rows by hash, each in A's order; matched rows are unlinked.
    internal::RowIndex chains(a_rows_.rows.size());
    for (auto row = a_rows_.rows.rbegin(); row != a_rows_.rows.rend(); ++row) {
      StoredRow*& head = chains.Chain(Xxh3(row->common()));
      row->next_same_hash = head;
      head = &*row;
    }
    std::vector<int64_t> b_only;  // positions of B rows without a match
    internal::RowStore b_kept;    // the first max_rows of them
    KILN_RETURN_IF_ERROR(ForEachUnsharedRow(b_, [&](const StoredRow& row) -> Status {
      if (StoredRow** head = chains.Find(Xxh3(row.common()))) {
        for (StoredRow** link = head; *link != nullptr; link = &(*link)->next_same_hash) {
          if ((*link)->common() == row.common()) {
            (*link)->matched_line = row.line;
            *link = (*link)->next_same_hash;
            return Status::Ok();
          }
        }
      }
      b_only.push_back(row.position);
      if (b_kept.rows.size() < options_.max_rows) b_kept.Add(row);
      return Status::Ok();
    }));
    // An A-only and a B-only row at the same position are one changed row.
    size_t j = 0;
    for (const StoredRow& row : a_rows_.rows) {
      if (row.matched_line != 0) continue;
      while (j < b_only.size() && b_only[j] < row.position) AddedUnkeyed(b_kept, j++);
      if (j < b_only.size() && b_only[j] == row.position) {
        ++diff_->rows_changed;
        if (b_listed_.size() < options_.max_rows && j < b_kept.rows.size()) {
          b_listed_.push_back(Changed(row, b_kept.rows[j]));
        }
        ++j;
      } else {
        ++diff_->rows_removed;
        if (a_listed_.size() < options_.max_rows) a_listed_.push_back(Removed(row));
      }
    }
    while (j < b_only.size()) AddedUnkeyed(b_kept, j++);
    return Status::Ok();
  }

  void AddedUnkeyed(const internal::RowStore& b_kept, size_t j) {
    ++diff_->rows_added;
    if (b_listed_.size() < options_.max_rows && j < b_kept.rows.size()) {
      b_listed_.push_back(Added(b_kept.rows[j]));
    }
  }

  std::string DisplayKey(const StoredRow& row) const {
    return std::string(internal::KeyText(row.key));
  }

  Listed Added(const StoredRow& row) const {
    Listed listed{row.position, false, {}};
    listed.change.kind = "added";
    listed.change.key = DisplayKey(row);
    listed.change.line_b = row.line;
    listed.change.after = internal::RowToJson(row.cells, b_.columns);
    return listed;
  }

  Listed Removed(const StoredRow& row) const {
    Listed listed{row.position, true, {}};
    listed.change.kind = "removed";
    listed.change.key = DisplayKey(row);
    listed.change.line_a = row.line;
    listed.change.before = internal::RowToJson(row.cells, a_.columns);
    return listed;
  }

  Listed Changed(const StoredRow& before, const StoredRow& after) const {
    Listed listed{after.position, false, {}};
    listed.change.kind = "changed";
    listed.change.key = DisplayKey(after);
    listed.change.line_a = before.line;
    listed.change.line_b = after.line;
    listed.change.before = Json::object();
    listed.change.after = Json::object();
    std::vector<table::Cell> a_cells;
    std::vector<table::Cell> b_cells;
    internal::DecodeRow(before.common(), &a_cells);
    internal::DecodeRow(after.common(), &b_cells);
    for (size_t i = 0; i < common_ && i < a_cells.size() && i < b_cells.size(); ++i) {
      if (a_cells[i].is_null == b_cells[i].is_null && a_cells[i].text == b_cells[i].text) {
        continue;
      }
      listed.change.before[a_.columns[i].name] =
          internal::CellToJson(a_.columns[i].type, a_cells[i]);
      listed.change.after[b_.columns[i].name] =
          internal::CellToJson(b_.columns[i].type, b_cells[i]);
    }
    return listed;
  }

  // Interleaves B's listed changes with A's removed rows by position.
  void Finish() {
    std::vector<Listed> all;
    all.reserve(a_listed_.size() + b_listed_.size());
    std::merge(std::make_move_iterator(a_listed_.begin()), std::make_move_iterator(a_listed_.end()),
               std::make_move_iterator(b_listed_.begin()), std::make_move_iterator(b_listed_.end()),
               std::back_inserter(all), [](const Listed& x, const Listed& y) {
                 if (x.position != y.position) return x.position < y.position;
                 return x.removed && !y.removed;
               });
    for (size_t i = 0; i < all.size() && i < options_.max_rows; ++i) {
      diff_->rows.push_back(std::move(all[i].change));
    }
    const int64_t total = diff_->rows_added + diff_->rows_removed + diff_->rows_changed;
    diff_->truncated = total > static_cast<int64_t>(diff_->rows.size());
  }

  ChunkLoader& loader_;
  const DiffOptions& options_;
  TableDiff* diff_;
  Side a_;
  Side b_;
  size_t common_ = 0;
  int key_index_ = -1;
  std::string scratch_cells_;
  std::string scratch_key_;
  internal::RowStore a_rows_;     // rows of A's unshared chunks
  std::vector<Listed> a_listed_;  // sorted by position
  std::vector<Listed> b_listed_;  // sorted by position
};

// A table that exists on one side only: every row is added (or removed); the first max_rows
// are listed, reading only the chunks they are in.
Status ListWholeTable(const TableVersion& version, bool added, ChunkLoader& loader,
                      const DiffOptions& options, TableDiff* diff) {
  (added ? diff->rows_added : diff->rows_removed) = static_cast<int64_t>(version.rows);
  std::vector<std::string> names;
  for (const table::Column& column : version.schema.columns) names.push_back(column.name);
  const int key_index = version.key ? version.schema.Find(*version.key) : -1;
  ColumnMap columns(names);
  std::vector<int64_t> starts = internal::ChunkStartRows(version);
  std::string encoded;
  std::string key;
  for (size_t i = 0; i < version.chunks.size() && diff->rows.size() < options.max_rows; ++i) {
    KILN_RETURN_IF_ERROR(
        internal::ForEachChunkRow(version, i, starts[i], loader, columns,
                                  [&](const table::RowReader& reader, int64_t) -> Status {
                                    if (diff->rows.size() >= options.max_rows) return Status::Ok();
                                    encoded.clear();
                                    columns.Encode(reader, names.size(), &encoded, nullptr);
                                    RowChange change;
                                    change.kind = added ? "added" : "removed";
                                    if (key_index >= 0) {
                                      internal::KeyOf(columns.target_cell(key_index), &key);
                                      change.key = std::string(internal::KeyText(key));
                                    }
                                    (added ? change.line_b : change.line_a) = reader.line();
                                    (added ? change.after : change.before) =
                                        internal::RowToJson(encoded, version.schema.columns);
                                    diff->rows.push_back(std::move(change));
                                    return Status::Ok();
                                  }));
  }
  diff->truncated = static_cast<int64_t>(version.rows) > static_cast<int64_t>(diff->rows.size());
  return Status::Ok();
}

}  // namespace

Json TableDiff::ToJson() const {
  Json schema = Json::array();
  for (const SchemaChange& change : schema_changes) {
    schema.push_back({{"column", change.column},
                      {"change", change.change},
                      {"before", change.before},
                      {"after", change.after}});
  }
  Json listed = Json::array();
  for (const RowChange& row : rows) {
    listed.push_back({{"kind", row.kind},
                      {"key", row.key},
                      {"line_a", row.line_a},
                      {"line_b", row.line_b},
                      {"before", row.before},
                      {"after", row.after}});
  }
  return {{"table", table},
          {"status", status},
          {"schema_changes", std::move(schema)},
          {"rows_added", rows_added},
          {"rows_removed", rows_removed},
          {"rows_changed", rows_changed},
          {"rows", std::move(listed)},
          {"truncated", truncated}};
}

Result<TableDiff> DiffTables(const TableVersion* a, const TableVersion* b, ChunkLoader& loader,
                             const DiffOptions& options) {
  if (a == nullptr && b == nullptr) return InvalidArgument("diff of two missing tables");
  TableDiff diff;
  diff.table = (b != nullptr ? b : a)->name;
  if (a != nullptr && b != nullptr && a->is_table() != b->is_table()) {
    return InvalidArgument("'" + diff.table + "' is a table on one side and a file on the other");
  }
  if (a == nullptr || b == nullptr) {
    const TableVersion& only = a != nullptr ? *a : *b;
    diff.status = a == nullptr ? "added" : "removed";
    if (only.is_table()) {
      KILN_RETURN_IF_ERROR(ListWholeTable(only, a == nullptr, loader, options, &diff));
    }
    return diff;
  }
  const bool same_bytes = a->manifest == b->manifest || SameChunkIds(*a, *b);
  if (!a->is_table()) {
    diff.status = same_bytes ? "unchanged" : "modified";
    return diff;
  }
  diff.schema_changes = CompareSchemas(a->schema, b->schema);
  if (same_bytes && a->schema == b->schema) {
    diff.status = "unchanged";
    return diff;
  }
  // Different bytes (or schema) are "modified" even when every row compares equal (a file
  // re-quoted or with other line endings, a moved row of a keyed table).
  diff.status = "modified";
  RowDiffer differ(*a, *b, loader, options, &diff);
  KILN_RETURN_IF_ERROR(differ.Run());
  return diff;
}

}  // namespace kiln::data
