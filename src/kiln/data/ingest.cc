#include "kiln/data/ingest.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <future>
#include <limits>
#include <utility>

#include "kiln/core/bytes.h"
#include "kiln/core/file_util.h"
#include "kiln/table/inference.h"

namespace kiln::data {

// ---- ObjectIndex ----------------------------------------------------------------------------

Result<std::optional<int>> ObjectIndex::Depth(const Digest& id) {
  std::string hex = id.Hex();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = claimed_.find(hex);
    if (it != claimed_.end()) return std::optional<int>(std::max(it->second, 0));
  }
  std::optional<int> depth;
  KILN_RETURN_IF_ERROR(database_->Read([&](store::Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(store::Rows rows,
                          tx.Query("SELECT depth FROM data_objects WHERE object_id = ?", {hex}));
    if (!rows.empty()) depth = static_cast<int>(rows.Int(0, 0));
    return Status::Ok();
  }));
  return depth;
}

bool ObjectIndex::Claim(const Digest& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  return claimed_.emplace(id.Hex(), -1).second;
}

void ObjectIndex::AddPending(NewObject object) {
  std::lock_guard<std::mutex> lock(mutex_);
  claimed_[object.id.Hex()] = object.depth;
  pending_.push_back(std::move(object));
}

std::vector<NewObject> ObjectIndex::TakePending() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<NewObject> out;
  out.swap(pending_);
  return out;
}

Result<Digest> PutMetadataObject(objects::ObjectStore& objects, ObjectIndex& index,
                                 std::string_view bytes, std::optional<Digest> base,
                                 int max_delta_depth) {
  Digest id = Sha256Of(bytes);
  KILN_ASSIGN_OR_RETURN(std::optional<int> depth, index.Depth(id));
  if (depth) return id;
  if (!index.Claim(id)) return id;
  objects::PutOptions put;
  // Small metadata compresses harder for free; a profile's megabytes of samples are on the
  // commit's serial path.
  put.zstd_level = bytes.size() < (1 << 20) ? 3 : 1;
  int new_depth = 0;
  if (base && *base != id) {
    KILN_ASSIGN_OR_RETURN(std::optional<int> base_depth, index.Depth(*base));
    if (base_depth && *base_depth < max_delta_depth) {
      put.base = *base;
      new_depth = *base_depth + 1;
    }
  }
  KILN_ASSIGN_OR_RETURN(objects::ObjectInfo info, objects.Put(id, bytes, put));
  if (!info.base) new_depth = 0;  // the store chose not to make it a delta
  index.AddPending(NewObject{id, info, new_depth});
  return id;
}

// ---- Ingest ---------------------------------------------------------------------------------

struct Ingest::Chunk {
  size_t index = 0;
  uint64_t offset = 0;
  int64_t first_line = 1;
  std::string owned;       // the chunk's bytes, unless they are borrowed from the caller's
  std::string_view bytes;  // owned, or the caller's mapped file (AppendMapped)

  bool done = false;  // guarded by Ingest::mutex_
  Status status;
  Digest id;
  uint64_t rows = 0;
  bool needs_reprofile = false;
  std::unique_ptr<ProfileBuilder> profile;
  bool is_new = false;
  uint64_t stored_bytes = 0;
  uint64_t anchor = 0;
  std::optional<Digest> base;        // delta base candidate
  std::optional<Digest> stats;       // the saved partial profile
  bool reused_profile = false;       // merged from the previous version's saved profile
  bool profiled_from_edits = false;  // the base's saved profile with the replaced rows redone
  // The saved profile's key limits (Ingest::key_limits_ unless edited; none: not saved).
  std::optional<KeyLimits> key_limits;
  std::string base_raw;  // the delta base's bytes, when ProfileEdits read them (Put reuses them)
};

namespace {

objects::RowBoundary BoundaryFor(const std::optional<table::Format>& format) {
  if (!format) return objects::RowBoundary::kBytes;
  return *format == table::Format::kJsonl ? objects::RowBoundary::kLines
                                          : objects::RowBoundary::kCsv;
}

uint64_t FirstRowAnchor(std::string_view bytes) {
  size_t end = std::min<size_t>(bytes.size(), 256);
  const void* newline = std::memchr(bytes.data(), '\n', end);
  if (newline != nullptr) end = static_cast<size_t>(static_cast<const char*>(newline) - bytes.data());
  uint64_t anchor = Xxh3(bytes.substr(0, end));
  return anchor == 0 ? 1 : anchor;
}

// A saved chunk profile nearly as big as its chunk (a column of distinct strings) costs more to
// store than parsing the chunk again; small ones cost nothing either way.
bool WorthSaving(size_t profile_bytes, size_t chunk_bytes) {
  return profile_bytes <= chunk_bytes / 4 || profile_bytes <= (64 << 10);
}

// The length of the common prefix of a and b.
size_t CommonPrefix(std::string_view a, std::string_view b) {
  const size_t size = std::min(a.size(), b.size());
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    uint64_t x, y;
    std::memcpy(&x, a.data() + i, 8);
    std::memcpy(&y, b.data() + i, 8);
    if (x != y) break;
  }
  while (i < size && a[i] == b[i]) ++i;
  return i;
}

// The line starting at `start`, with its newline if it has one.
std::string_view LineAt(std::string_view bytes, size_t start) {
  const size_t newline = bytes.find('\n', start);
  return bytes.substr(
      start, newline == std::string_view::npos ? std::string_view::npos : newline + 1 - start);
}

// A line with nothing but its terminator: the CSV reader skips it (or, in a one-column table,
// reads a null), so it is not simply one row.
bool IsBlankLine(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line.empty();
}

// Column `index`'s cells in every row of a chunk without quotes, by the CSV reader's rules: fields
// split at the delimiter, the line's \n or \r\n ends the last one, an empty field is null, and a
// blank line is skipped (in a one-column table it is a row holding a null).
std::vector<table::Cell> ColumnCells(std::string_view bytes, size_t index, size_t columns,
                                     char delimiter, bool skip_first_line) {
  std::vector<table::Cell> cells;
  size_t at = 0;
  if (skip_first_line) at = LineAt(bytes, 0).size();
  while (at < bytes.size()) {
    std::string_view line = LineAt(bytes, at);
    at += line.size();
    if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() && columns > 1) continue;
    size_t start = 0;
    for (size_t field = 0; field < index && start != std::string_view::npos; ++field) {
      start = line.find(delimiter, start);
      if (start != std::string_view::npos) ++start;
    }
    if (start == std::string_view::npos) {  // a short row: cannot be one the reader accepted
      cells.push_back(table::Cell{{}, true, false});
      continue;
    }
    const size_t end = std::min(line.find(delimiter, start), line.size());
    const std::string_view text = line.substr(start, end - start);
    cells.push_back(table::Cell{text, text.empty(), false});
  }
  return cells;
}

struct ReplacedLine {
  int64_t line = 0;
  std::string_view before;  // with its terminator
  std::string_view after;
};

}  // namespace

Ingest::Ingest(objects::ObjectStore* objects, ObjectIndex* index, ThreadPool* pool,
               const RepositoryOptions* options, IngestTarget target)
    : objects_(objects),
      index_(index),
      pool_(pool),
      options_(options),
      target_(std::move(target)),
      chunker_(std::make_unique<objects::Chunker>(BoundaryFor(target_.format), options->chunker)) {
  size_t per_chunk = std::max<size_t>(options->chunker.max_size, 1) * 3;
  size_t by_budget = std::max<size_t>(options->memory_budget / per_chunk, 2);
  window_ = std::min<size_t>(by_budget, static_cast<size_t>(pool->size()) * 2 + 2);
  stats_.name = target_.name;
  if (target_.previous != nullptr) {
    uint64_t offset = 0;
    for (size_t i = 0; i < target_.previous->chunks.size(); ++i) {
      const ChunkRef& chunk = target_.previous->chunks[i];
      previous_offsets_.push_back(offset);
      offset += chunk.size;
      if (chunk.anchor != 0) previous_anchors_.emplace(chunk.anchor, i);
      if (chunk.stats) previous_by_id_.emplace(chunk.id.Hex(), &chunk);
    }
  }
}

Ingest::~Ingest() {
  // Workers reference this object's chunks: wait for every one before they go away.
  Drain();
}

void Ingest::Drain() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (auto& chunk : in_flight_) {
    done_.wait(lock, [&] { return chunk->done; });
  }
}

Status Ingest::Append(std::string_view bytes) { return AppendBytes(bytes, /*borrowed=*/false); }

Status Ingest::AppendMapped(std::string_view bytes) {
  return AppendBytes(bytes, /*borrowed=*/true);
}

Status Ingest::AppendBytes(std::string_view bytes, bool borrowed) {
  while (!bytes.empty() && first_error_.ok()) {
    if (buffer_start_ == buffer_.size()) {
      // Nothing carried over: cut straight from the caller's bytes and keep only the tail, so
      // each byte is copied once (into its chunk), or never if the caller's bytes stay valid.
      size_t used = 0;
      KILN_RETURN_IF_ERROR(CutFrom(bytes, /*at_eof=*/false, borrowed, &used));
      buffer_.assign(bytes.substr(used));
      buffer_start_ = 0;
      return first_error_;
    }
    // The carried tail needs what follows it: add enough for a chunk (or as much again as is
    // carried, for a row longer than any chunk), cut, and go back to the caller's bytes for
    // whatever of them was not cut.
    const size_t carried = buffer_.size() - buffer_start_;
    const size_t take =
        std::min(bytes.size(), std::max<size_t>(options_->chunker.max_size, carried));
    buffer_.append(bytes.substr(0, take));
    bytes.remove_prefix(take);
    size_t used = 0;
    KILN_RETURN_IF_ERROR(
        CutFrom(std::string_view(buffer_).substr(buffer_start_), false, false, &used));
    buffer_start_ += used;
    const size_t left = buffer_.size() - buffer_start_;
    if (left <= take) {
      bytes = std::string_view(bytes.data() - left, bytes.size() + left);
      buffer_.clear();
      buffer_start_ = 0;
    } else if (buffer_start_ * 2 >= buffer_.size()) {
      buffer_.erase(0, buffer_start_);
      buffer_start_ = 0;
    }
  }
  return first_error_;
}

Status Ingest::CutFrom(std::string_view view, bool at_eof, bool borrowed, size_t* used) {
  *used = 0;
  while (first_error_.ok() && !view.empty()) {
    size_t cut = chunker_->NextCut(view, at_eof);
    if (cut == 0) {
      // No row end in sight: a quote that never closes makes the rest of a CSV one "row". Past
      // any legal field size, hand what we have to the parser, which names the problem.
      if (view.size() < options_->chunker.max_size + (64 << 20)) break;
      cut = view.size();
    }
    KILN_RETURN_IF_ERROR(Dispatch(view.substr(0, cut), borrowed));
    view.remove_prefix(cut);
    *used += cut;
  }
  return first_error_;
}

Status Ingest::InferSchema(std::string_view first_chunk) {
  table::ReadOptions read;
  read.file_name = target_.file_name;
  read.first_line = 1;
  read.has_header = *target_.format != table::Format::kJsonl;
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<table::RowReader> reader,
                        table::RowReader::Open(*target_.format, first_chunk, read));
  table::SchemaInferrer inferrer(*target_.format);
  std::vector<uint64_t> filled;  // per column, the first chunk's cells that are not null
  uint64_t observed = 0;
  while (true) {
    KILN_ASSIGN_OR_RETURN(bool more, reader->Next());
    if (!more) break;
    inferrer.Observe(*reader);
    const std::vector<table::Cell>& cells = reader->cells();
    if (filled.size() < cells.size()) filled.resize(cells.size());
    for (size_t i = 0; i < cells.size(); ++i) filled[i] += !cells[i].is_null;
    ++observed;
  }
  schema_ = inferrer.Finish();
  if (schema_.columns.empty()) {
    // A header and no rows: the names are all there is; the columns are nullable strings.
    for (const std::string& name : reader->column_names()) {
      schema_.columns.push_back(table::Column{name, table::ColumnType::kString, true});
    }
  }
  schema_known_ = true;
  edits_profilable_ =
      *target_.format != table::Format::kJsonl &&
      std::all_of(schema_.columns.begin(), schema_.columns.end(), [](const table::Column& column) {
        return column.type == table::ColumnType::kInt64 ||
               column.type == table::ColumnType::kFloat64 ||
               column.type == table::ColumnType::kTimestamp;
      });
  numeric_csv_ =
      options_->fused_numeric_parse && *target_.format != table::Format::kJsonl &&
      std::all_of(schema_.columns.begin(), schema_.columns.end(), [](const table::Column& column) {
        return column.type == table::ColumnType::kInt64 ||
               column.type == table::ColumnType::kFloat64;
      });
  profile_ = std::make_unique<ProfileBuilder>(schema_, options_->profile);
  // Chunk profiles are saved when the table's size can be told now (the sample candidates they
  // keep depend on it): from the file's size at the first chunk's row density, or the previous
  // version's rows.
  uint64_t expected_rows = target_.previous != nullptr ? target_.previous->rows : 0;
  const uint64_t first_rows = static_cast<uint64_t>(std::max<int64_t>(reader->line() - 1, 1));
  if (target_.expected_bytes > 0 && !first_chunk.empty()) {
    expected_rows = static_cast<uint64_t>(static_cast<double>(target_.expected_bytes) /
                                          static_cast<double>(first_chunk.size()) *
                                          static_cast<double>(first_rows));
  }
  if (expected_rows > 0) {
    // Per numeric column, limits for the values it is expected to hold: the expected rows times
    // the share of the first chunk's rows it has a value in. Saving keeps 1.25 times the sample
    // for a column with values in most rows, twice for a sparser one (its share is less sure).
    // Chunks profiled here (CSV, TSV and JSONL) keep four times what saving keeps, which leaves
    // the sample exact down to a quarter of the expected values.
    std::vector<uint64_t> saving(schema_.columns.size(), KeyLimits::kNone);
    std::vector<uint64_t> sampling(schema_.columns.size(), KeyLimits::kNone);
    for (size_t i = 0; i < schema_.columns.size(); ++i) {
      if (!table::IsNumeric(schema_.columns[i].type)) continue;
      const double share =
          observed == 0 ? 1.0
                        : static_cast<double>(i < filled.size() ? filled[i] : 0) /
                              static_cast<double>(observed);
      const uint64_t values =
          static_cast<uint64_t>(std::llround(static_cast<double>(expected_rows) * share));
      const double margin = share >= 0.9 ? 1.25 : 2;
      saving[i] = ProfileBuilder::KeyLimitFor(values, options_->profile, margin);
      sampling[i] = ProfileBuilder::KeyLimitFor(values, options_->profile, 4 * margin);
      // Every chunk parsed from now on keeps part of its candidates, as a reused one does.
      if (sampling[i] != KeyLimits::kNone) reused_profiles_ = true;
    }
    key_limits_ = KeyLimits(std::move(saving));
    sample_limits_ = KeyLimits(std::move(sampling));
  }
  return Status::Ok();
}

Status Ingest::Dispatch(std::string_view bytes, bool borrowed) {
  auto chunk = std::make_unique<Chunk>();
  chunk->index = chunks_.size() + in_flight_.size();
  chunk->offset = offset_;
  chunk->first_line = next_line_;
  offset_ += bytes.size();
  next_line_ += static_cast<int64_t>(CountByte(bytes, '\n'));
  if (chunk->index == 0) compression_ = objects::ChooseCompression(bytes, options_->zstd_level);
  if (target_.format && chunk->index == 0) {
    Status inferred = InferSchema(bytes);
    if (!inferred.ok()) {
      first_error_ = inferred;
      return inferred;
    }
  }
  chunk->anchor = FirstRowAnchor(bytes);
  chunk->base = ChooseBase(chunk->offset, bytes, chunk->anchor);
  if (borrowed) {
    chunk->bytes = bytes;
  } else {
    chunk->owned.assign(bytes);
    chunk->bytes = chunk->owned;
  }
  while (in_flight_.size() >= window_) {
    KILN_RETURN_IF_ERROR(CollectReady(/*wait_all=*/false));
    if (in_flight_.size() >= window_) {
      std::unique_lock<std::mutex> lock(mutex_);
      done_.wait(lock, [&] { return in_flight_.front()->done; });
    }
  }
  Chunk* raw = chunk.get();
  in_flight_.push_back(std::move(chunk));
  pool_->Submit([this, raw] {
    Process(*raw);
    // Notified under the lock: a waiter that sees `done` may go on to destroy this Ingest (its
    // destructor only drains), so the worker must be done with done_ before the waiter can run.
    std::lock_guard<std::mutex> lock(mutex_);
    raw->done = true;
    done_.notify_all();
  });
  return Status::Ok();
}

std::optional<Digest> Ingest::ChooseBase(uint64_t offset, std::string_view bytes,
                                         uint64_t anchor) {
  if (target_.previous == nullptr || previous_offsets_.empty()) return std::nullopt;
  const std::vector<ChunkRef>& previous = target_.previous->chunks;
  size_t best = previous.size();
  auto anchored = previous_anchors_.find(anchor);
  if (anchored != previous_anchors_.end()) {
    best = anchored->second;
    drift_ = static_cast<int64_t>(offset) - static_cast<int64_t>(previous_offsets_[best]);
  } else {
    // Where this chunk's bytes were before, if everything since the last match shifted alike;
    // pick the previous chunk that overlaps that range the most.
    int64_t start = static_cast<int64_t>(offset) - drift_;
    int64_t end = start + static_cast<int64_t>(bytes.size());
    auto it = std::upper_bound(previous_offsets_.begin(), previous_offsets_.end(),
                               static_cast<uint64_t>(std::max<int64_t>(start, 0)));
    size_t at = static_cast<size_t>(it - previous_offsets_.begin());
    if (at > 0) --at;
    int64_t best_overlap = 0;
    for (size_t i = at; i < previous.size() && static_cast<int64_t>(previous_offsets_[i]) < end;
         ++i) {
      int64_t chunk_start = static_cast<int64_t>(previous_offsets_[i]);
      int64_t chunk_end = chunk_start + static_cast<int64_t>(previous[i].size);
      int64_t overlap = std::min(end, chunk_end) - std::max(start, chunk_start);
      if (overlap > best_overlap) {
        best_overlap = overlap;
        best = i;
      }
    }
  }
  if (best >= previous.size()) return std::nullopt;
  const ChunkRef& base = previous[best];
  // A base far smaller or larger than the chunk shares little with it.
  if (base.size * 8 < bytes.size() || bytes.size() * 8 < base.size) return std::nullopt;
  return base.id;
}

void Ingest::Process(Chunk& chunk) {
  chunk.id = Sha256Of(chunk.bytes);
  if (target_.format) {
    chunk.status = ProfileChunk(chunk);
    if (!chunk.status.ok()) return;
  }
  auto stored = index_->Depth(chunk.id);
  if (!stored.ok()) {
    chunk.status = stored.status();
    return;
  }
  if (target_.format && !chunk.reused_profile) {
    chunk.status = SaveChunkProfile(chunk);
    if (!chunk.status.ok()) return;
  }
  if (stored->has_value() || !index_->Claim(chunk.id)) {
    std::string().swap(chunk.base_raw);
    return;
  }
  objects::PutOptions put = compression_;
  int depth = 0;
  if (chunk.base && *chunk.base != chunk.id) {
    auto base_depth = index_->Depth(*chunk.base);
    if (base_depth.ok() && base_depth->has_value() && **base_depth < options_->max_delta_depth) {
      put = objects::PutOptions();
      put.zstd_level = options_->zstd_level;
      put.base = *chunk.base;
      put.base_raw = chunk.base_raw;  // empty unless ProfileEdits read it: then Put reads it
      depth = **base_depth + 1;
    }
  }
  auto info = objects_->Put(chunk.id, chunk.bytes, put);
  std::string().swap(chunk.base_raw);
  if (!info.ok()) {
    chunk.status = info.status();
    return;
  }
  if (!info->base) depth = 0;  // the store chose not to make it a delta
  chunk.is_new = true;
  chunk.stored_bytes = info->stored_size;
  index_->AddPending(NewObject{chunk.id, *info, depth});
  FaultPoint("data.ingest.after_chunk");
}

Status Ingest::ProfileChunk(Chunk& chunk) {
  auto same = previous_by_id_.find(chunk.id.Hex());
  if (same != previous_by_id_.end() && same->second->first_line == chunk.first_line) {
    // The previous version held these bytes at this line: merge what was saved, if it was saved
    // for this schema (else parse as usual).
    const ChunkRef& previous = *same->second;
    Result<std::string> saved = objects_->Get(*previous.stats);
    if (saved.ok()) {
      Result<ProfileBuilder> profile =
          ProfileBuilder::Deserialize(schema_, options_->profile, *saved);
      if (profile.ok()) {
        chunk.profile = std::make_unique<ProfileBuilder>(std::move(*profile));
        chunk.rows = previous.rows;
        chunk.stats = previous.stats;
        chunk.reused_profile = true;
        return Status::Ok();
      }
    }
  }
  KILN_ASSIGN_OR_RETURN(bool edited, ProfileEdits(chunk));
  if (edited) return Status::Ok();
  chunk.key_limits = key_limits_;
  if (numeric_csv_) {
    // Straight from the bytes to the profile; anything the fused parse does not take (quotes,
    // \r, blank lines, bad or widening cells...) is parsed again below, which gives the errors.
    chunk.profile = std::make_unique<ProfileBuilder>(schema_, options_->profile);
    chunk.profile->LimitSample(sample_limits_);
    uint64_t rows = 0;
    if (chunk.profile->AddNumericCsv(chunk.bytes,
                                     *target_.format == table::Format::kTsv ? '\t' : ',',
                                     chunk.first_line, chunk.index == 0, &rows)) {
      chunk.rows = rows;
      return Status::Ok();
    }
  }
  table::ReadOptions read;
  read.file_name = target_.file_name;
  read.first_line = chunk.first_line;
  read.has_header = chunk.index == 0 && *target_.format != table::Format::kJsonl;
  if (!read.has_header) {
    for (const table::Column& column : schema_.columns) read.column_names.push_back(column.name);
  }
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<table::RowReader> reader,
                        table::RowReader::Open(*target_.format, chunk.bytes, read));
  chunk.profile = std::make_unique<ProfileBuilder>(schema_, options_->profile);
  chunk.profile->LimitSample(sample_limits_);
  const size_t width = schema_.columns.size();
  while (true) {
    KILN_ASSIGN_OR_RETURN(bool more, reader->Next());
    if (!more) break;
    if (reader->cells().size() > width) chunk.needs_reprofile = true;  // a JSONL key not seen before
    if (chunk.needs_reprofile) {
      // The profile is redone over the whole table; only the checks matter now.
      const std::vector<table::Cell>& cells = reader->cells();
      for (size_t i = 0; i < width && i < cells.size(); ++i) {
        bool widen = false;
        KILN_RETURN_IF_ERROR(table::CheckCell(schema_.columns[i], cells[i], target_.file_name,
                                              reader->line(), static_cast<int>(i) + 1, &widen));
      }
    } else {
      bool widen = false;
      KILN_RETURN_IF_ERROR(chunk.profile->AddChecked(*reader, target_.file_name, &widen));
      if (widen) chunk.needs_reprofile = true;
    }
    ++chunk.rows;
  }
  return Status::Ok();
}

// Why this is exact: without quotes every line is one row on its own (blank lines aside), so
// the chunk's rows are the base's with the replaced lines' rows swapped, at the same lines (the
// sample keys depend on the line). The base's rows were all valid under this schema (its saved
// profile was saved for the same column names and types), so the first bad replaced row is the
// chunk's first bad row, and its error reads as the full parse's (the reader is told the line).
// Whatever ProfileBuilder::Remove or the key limit cannot keep exact falls back to parsing.
Result<bool> Ingest::ProfileEdits(Chunk& chunk) {
  if (!edits_profilable_ || !chunk.base || !key_limits_) return false;
  auto found = previous_by_id_.find(chunk.base->Hex());
  if (found == previous_by_id_.end()) return false;
  const ChunkRef& previous = *found->second;
  if (previous.first_line != chunk.first_line || previous.id == chunk.id) return false;
  const std::string_view after = chunk.bytes;
  if (std::memchr(after.data(), '"', after.size()) != nullptr) return false;
  Result<std::string> base_bytes = objects_->Get(previous.id);
  if (!base_bytes.ok()) return false;
  chunk.base_raw = std::move(base_bytes).value();  // kept for the delta Put
  const std::string_view before = chunk.base_raw;
  if (std::memchr(before.data(), '"', before.size()) != nullptr) return false;

  // Walk both in lockstep: equal stretches, then one replaced line in each.
  const bool has_header = chunk.index == 0;
  const size_t most_replaced = previous.rows / 4;  // beyond that, parsing is as cheap
  std::vector<ReplacedLine> replaced;
  size_t at_before = 0, at_after = 0;
  int64_t line = chunk.first_line;
  while (true) {
    const size_t same = CommonPrefix(before.substr(at_before), after.substr(at_after));
    if (at_before + same == before.size() && at_after + same == after.size()) break;
    size_t start = same;  // back to the start of the differing line
    while (start > 0 && before[at_before + start - 1] != '\n') --start;
    line += static_cast<int64_t>(CountByte(before.substr(at_before, start), '\n'));
    at_before += start;
    at_after += start;
    ReplacedLine edit{line, LineAt(before, at_before), LineAt(after, at_after)};
    // An empty side: lines were inserted or deleted, not replaced.
    if (edit.before.empty() || edit.after.empty() || IsBlankLine(edit.before) ||
        IsBlankLine(edit.after) || (has_header && line == chunk.first_line) ||
        replaced.size() >= most_replaced) {
      return false;
    }
    at_before += edit.before.size();
    at_after += edit.after.size();
    ++line;
    replaced.push_back(edit);
  }

  Result<std::string> saved = objects_->Get(*previous.stats);
  if (!saved.ok()) return false;
  Result<ProfileBuilder> restored = ProfileBuilder::Deserialize(schema_, options_->profile, *saved);
  if (!restored.ok()) return false;
  // The edited chunk's profile is saved with the base's key limits (only values below them are
  // known); keep to limits near this version's, as chunks profiled afresh would.
  const KeyLimits limits = restored->RestoredKeyLimits();
  for (size_t i = 0; i < schema_.columns.size(); ++i) {
    const uint64_t limit = limits[i];
    const uint64_t wanted = (*key_limits_)[i];
    const bool unlimited = limit == KeyLimits::kNone;
    if (unlimited != (wanted == KeyLimits::kNone) ||
        (!unlimited && (limit < wanted - wanted / 10 || limit / 2 > wanted))) {
      return false;
    }
  }
  auto profile = std::make_unique<ProfileBuilder>(std::move(*restored));
  table::ReadOptions read;
  read.file_name = target_.file_name;
  read.has_header = false;
  for (const table::Column& column : schema_.columns) read.column_names.push_back(column.name);
  for (const ReplacedLine& edit : replaced) {
    read.first_line = edit.line;
    Result<std::unique_ptr<table::RowReader>> old_reader =
        table::RowReader::Open(*target_.format, edit.before, read);
    if (!old_reader.ok()) return false;
    Result<bool> old_row = (*old_reader)->Next();
    if (!old_row.ok() || !*old_row || !profile->Remove(**old_reader)) return false;
    KILN_ASSIGN_OR_RETURN(std::unique_ptr<table::RowReader> new_reader,
                          table::RowReader::Open(*target_.format, edit.after, read));
    KILN_ASSIGN_OR_RETURN(bool new_row, new_reader->Next());
    if (!new_row) return false;
    bool widen = false;
    KILN_RETURN_IF_ERROR(profile->AddChecked(*new_reader, target_.file_name, &widen));
    if (widen) return false;  // the full parse finds it again and reprofiles the table
  }
  // Bounds a removed row may have held: recomputed from the column's cells alone, far cheaper
  // than parsing every cell of the chunk.
  const char delimiter = *target_.format == table::Format::kTsv ? '\t' : ',';
  for (size_t index : profile->StaleBounds()) {
    if (!profile->RecomputeBounds(
            index, ColumnCells(after, index, schema_.columns.size(), delimiter, has_header))) {
      return false;
    }
  }
  if (!profile->EditsExact()) return false;
  chunk.profile = std::move(profile);
  chunk.rows = previous.rows;
  chunk.key_limits = limits;
  chunk.profiled_from_edits = true;
  return true;
}

Status Ingest::SaveChunkProfile(Chunk& chunk) {
  if (!chunk.key_limits || chunk.needs_reprofile || !chunk.profile) return Status::Ok();
  std::string saved = chunk.profile->Serialize(*chunk.key_limits);
  if (!WorthSaving(saved.size(), chunk.bytes.size())) return Status::Ok();
  std::optional<Digest> base;
  if (chunk.base) {
    auto base_chunk = previous_by_id_.find(chunk.base->Hex());
    if (base_chunk != previous_by_id_.end()) base = base_chunk->second->stats;
  }
  KILN_ASSIGN_OR_RETURN(Digest id, PutMetadataObject(*objects_, *index_, saved, base,
                                                     options_->max_delta_depth));
  chunk.stats = id;
  return Status::Ok();
}

Status Ingest::CollectReady(bool wait_all) {
  while (!in_flight_.empty()) {
    Chunk* front = in_flight_.front().get();
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (!front->done) {
        if (!wait_all) return first_error_;
        done_.wait(lock, [&] { return front->done; });
      }
    }
    if (first_error_.ok() && !front->status.ok()) first_error_ = front->status;
    if (first_error_.ok()) {
      if (front->needs_reprofile) needs_reprofile_ = true;
      // An edited chunk's profile, like a reused one, keeps sample candidates only below its
      // key limit.
      if (front->reused_profile || front->profiled_from_edits) reused_profiles_ = true;
      if (front->profile && !needs_reprofile_) profile_->Merge(std::move(*front->profile));
      chunks_.push_back(ChunkRef{front->id, front->bytes.size(), front->rows, front->first_line,
                                 front->anchor, front->stats});
      rows_ += front->rows;
      stats_.chunks += 1;
      if (front->profiled_from_edits) {
        stats_.chunks_profiled_from_edits += 1;
      } else if (target_.format && !front->reused_profile) {
        stats_.chunks_parsed += 1;
      }
      if (front->is_new) {
        stats_.chunks_new += 1;
        stats_.stored_bytes += front->stored_bytes;
      }
    }
    in_flight_.erase(in_flight_.begin());
  }
  return first_error_;
}

namespace {

class StoreLoader : public ChunkLoader {
 public:
  explicit StoreLoader(objects::ObjectStore* objects) : objects_(objects) {}
  Result<std::string> Load(const Digest& id) override { return objects_->Get(id); }

 private:
  objects::ObjectStore* objects_;
};

}  // namespace

namespace {

Result<std::unique_ptr<table::RowReader>> OpenChunk(const TableVersion& version, size_t index,
                                                    const std::string& file_name,
                                                    const std::string& bytes,
                                                    const std::vector<std::string>& names) {
  table::ReadOptions read;
  read.file_name = file_name;
  read.first_line = version.chunks[index].first_line;
  read.has_header = index == 0 && *version.format != table::Format::kJsonl;
  if (!read.has_header) read.column_names = names;
  return table::RowReader::Open(*version.format, bytes, read);
}

}  // namespace

// The rare slow path: a later chunk widened a column (int64 -> float64) or brought a JSONL key
// the first chunk did not have. Infer over every row, then check and profile again, in order.
Status Ingest::Reprofile(TableVersion& version) {
  StoreLoader loader(objects_);
  table::SchemaInferrer inferrer(*target_.format);
  std::vector<std::string> names;
  for (size_t i = 0; i < version.chunks.size(); ++i) {
    KILN_ASSIGN_OR_RETURN(std::string bytes, loader.Load(version.chunks[i].id));
    KILN_ASSIGN_OR_RETURN(std::unique_ptr<table::RowReader> reader,
                          OpenChunk(version, i, target_.file_name, bytes, names));
    while (true) {
      KILN_ASSIGN_OR_RETURN(bool more, reader->Next());
      if (!more) break;
      inferrer.Observe(*reader);
    }
    names = reader->column_names();
  }
  schema_ = inferrer.Finish();
  version.schema = schema_;
  return ProfileAllChunks(version);
}

Status Ingest::ProfileAllChunks(TableVersion& version) {
  StoreLoader loader(objects_);
  std::vector<std::string> names;
  for (const table::Column& column : schema_.columns) names.push_back(column.name);
  profile_ = std::make_unique<ProfileBuilder>(schema_, options_->profile);
  for (size_t i = 0; i < version.chunks.size(); ++i) {
    ChunkRef& chunk = version.chunks[i];
    KILN_ASSIGN_OR_RETURN(std::string bytes, loader.Load(chunk.id));
    KILN_ASSIGN_OR_RETURN(std::unique_ptr<table::RowReader> reader,
                          OpenChunk(version, i, target_.file_name, bytes, names));
    ProfileBuilder part(schema_, options_->profile);
    while (true) {
      KILN_ASSIGN_OR_RETURN(bool more, reader->Next());
      if (!more) break;
      const std::vector<table::Cell>& cells = reader->cells();
      for (size_t c = 0; c < schema_.columns.size() && c < cells.size(); ++c) {
        bool widen = false;
        KILN_RETURN_IF_ERROR(table::CheckCell(schema_.columns[c], cells[c], target_.file_name,
                                              reader->line(), static_cast<int>(c) + 1, &widen));
      }
      part.Add(*reader);
    }
    // Saved again for this schema and this table size, so the next version can merge them.
    chunk.stats.reset();
    if (key_limits_) {
      std::string saved = part.Serialize(*key_limits_);
      if (WorthSaving(saved.size(), bytes.size())) {
        KILN_ASSIGN_OR_RETURN(chunk.stats, PutMetadataObject(*objects_, *index_, saved,
                                                             std::nullopt,
                                                             options_->max_delta_depth));
      }
    }
    profile_->Merge(std::move(part));
  }
  return Status::Ok();
}

Result<TableVersion> Ingest::Finish() {
  size_t used = 0;
  KILN_RETURN_IF_ERROR(
      CutFrom(std::string_view(buffer_).substr(buffer_start_), /*at_eof=*/true, false, &used));
  buffer_start_ += used;
  KILN_RETURN_IF_ERROR(CollectReady(/*wait_all=*/true));
  // Every chunk is written: their write-back (on a 500 MB table, ~0.1 s of syncfs still waiting
  // for the disk) runs on its own thread while this one builds the profile and the manifest, so
  // the caller's Sync has only those left. Sync tolerates Puts beside it (what it misses, the
  // next Sync covers). The future's destructor waits for it on every return.
  std::future<Status> chunks_synced =
      std::async(std::launch::async, [objects = objects_] { return objects->Sync(); });
  TableVersion version;
  version.name = target_.name;
  version.file_name = target_.file_name;
  version.format = target_.format;
  version.key = target_.key;
  version.chunks = chunks_;
  version.rows = rows_;
  version.bytes = offset_;
  stats_.bytes = offset_;
  stats_.rows = rows_;
  if (target_.format) {
    if (chunks_.empty()) {
      return InvalidArgument(target_.file_name + ":1:1: empty file (no header row)");
    }
    version.schema = schema_;
    if (needs_reprofile_) {
      KILN_RETURN_IF_ERROR(Reprofile(version));
      stats_.chunks_parsed = version.chunks.size();
      stats_.chunks_profiled_from_edits = 0;
    } else if (reused_profiles_ && !profile_->SampleExact()) {
      KILN_RETURN_IF_ERROR(ProfileAllChunks(version));
      stats_.chunks_parsed = version.chunks.size();
      stats_.chunks_profiled_from_edits = 0;
    }
    if (version.key && version.schema.Find(*version.key) < 0) {
      return InvalidArgument("--key '" + *version.key + "': " + target_.file_name +
                             " has no such column");
    }
    std::string profile_text = profile_->FinishText(pool_);
    std::optional<Digest> previous_profile;
    if (target_.previous != nullptr) previous_profile = target_.previous->profile;
    KILN_ASSIGN_OR_RETURN(Digest profile_id,
                          PutMetadataObject(*objects_, *index_, profile_text, previous_profile,
                                            options_->max_delta_depth));
    version.profile = profile_id;
  }
  Json manifest = {{"format", target_.format ? std::string(table::FormatName(*target_.format))
                                             : std::string("bytes")},
                   {"rows", version.rows},
                   {"bytes", version.bytes},
                   {"chunks", Json::array()}};
  for (const ChunkRef& chunk : version.chunks) {
    manifest["chunks"].push_back({{"id", chunk.id.Hex()},
                                  {"size", chunk.size},
                                  {"rows", chunk.rows},
                                  {"first_line", chunk.first_line},
                                  {"anchor", chunk.anchor}});
    if (chunk.stats) manifest["chunks"].back()["stats"] = chunk.stats->Hex();
  }
  std::optional<Digest> previous_manifest;
  if (target_.previous != nullptr) previous_manifest = target_.previous->manifest;
  KILN_ASSIGN_OR_RETURN(version.manifest,
                        PutMetadataObject(*objects_, *index_, manifest.dump(), previous_manifest,
                                          options_->max_delta_depth));
  KILN_RETURN_IF_ERROR(chunks_synced.get());
  return version;
}

}  // namespace kiln::data
