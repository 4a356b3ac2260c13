#include "kiln/data/ingest.h"

#include <algorithm>
#include <cstring>
#include <utility>

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
  put.zstd_level = 3;
  int new_depth = 0;
  if (base && *base != id) {
    KILN_ASSIGN_OR_RETURN(std::optional<int> base_depth, index.Depth(*base));
    if (base_depth && *base_depth < max_delta_depth) {
      put.base = *base;
      new_depth = *base_depth + 1;
    }
  }
  KILN_ASSIGN_OR_RETURN(objects::ObjectInfo info, objects.Put(id, bytes, put));
  if (info.encoding != objects::Encoding::kZstdDelta) new_depth = 0;
  index.AddPending(NewObject{id, info, new_depth});
  return id;
}

// ---- Ingest ---------------------------------------------------------------------------------

struct Ingest::Chunk {
  size_t index = 0;
  uint64_t offset = 0;
  int64_t first_line = 1;
  std::string bytes;

  bool done = false;  // guarded by Ingest::mutex_
  Status status;
  Digest id;
  uint64_t rows = 0;
  bool needs_reprofile = false;
  std::unique_ptr<ProfileBuilder> profile;
  bool is_new = false;
  uint64_t stored_bytes = 0;
  uint64_t anchor = 0;
  std::optional<Digest> base;  // delta base candidate
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

int64_t CountLines(std::string_view bytes) {
  int64_t lines = 0;
  const char* at = bytes.data();
  const char* end = at + bytes.size();
  while (at < end) {
    const void* found = std::memchr(at, '\n', static_cast<size_t>(end - at));
    if (found == nullptr) break;
    ++lines;
    at = static_cast<const char*>(found) + 1;
  }
  return lines;
}

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
    }
  }
}

Ingest::~Ingest() {
  // Workers reference this object's chunks: wait for every one before they go away.
  std::unique_lock<std::mutex> lock(mutex_);
  for (auto& chunk : in_flight_) {
    done_.wait(lock, [&] { return chunk->done; });
  }
}

Status Ingest::Append(std::string_view bytes) {
  if (!first_error_.ok()) return first_error_;
  buffer_.append(bytes);
  return Cut(/*at_eof=*/false);
}

Status Ingest::Cut(bool at_eof) {
  while (first_error_.ok()) {
    std::string_view view(buffer_.data() + buffer_start_, buffer_.size() - buffer_start_);
    if (view.empty()) break;
    size_t cut = chunker_->NextCut(view, at_eof);
    if (cut == 0) {
      // No row end in sight: a quote that never closes makes the rest of a CSV one "row". Past
      // any legal field size, hand what we have to the parser, which names the problem.
      if (view.size() < options_->chunker.max_size + (64 << 20)) break;
      cut = view.size();
    }
    KILN_RETURN_IF_ERROR(Dispatch(std::string(view.substr(0, cut))));
    buffer_start_ += cut;
  }
  if (buffer_start_ > 0 && buffer_start_ * 2 >= buffer_.size()) {
    buffer_.erase(0, buffer_start_);
    buffer_start_ = 0;
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
  while (true) {
    KILN_ASSIGN_OR_RETURN(bool more, reader->Next());
    if (!more) break;
    inferrer.Observe(*reader);
  }
  schema_ = inferrer.Finish();
  if (schema_.columns.empty()) {
    // A header and no rows: the names are all there is; the columns are nullable strings.
    for (const std::string& name : reader->column_names()) {
      schema_.columns.push_back(table::Column{name, table::ColumnType::kString, true});
    }
  }
  schema_known_ = true;
  profile_ = std::make_unique<ProfileBuilder>(schema_, options_->profile);
  return Status::Ok();
}

Status Ingest::Dispatch(std::string bytes) {
  auto chunk = std::make_unique<Chunk>();
  chunk->index = chunks_.size() + in_flight_.size();
  chunk->offset = offset_;
  chunk->first_line = next_line_;
  offset_ += bytes.size();
  next_line_ += CountLines(bytes);
  if (target_.format && chunk->index == 0) {
    Status inferred = InferSchema(bytes);
    if (!inferred.ok()) {
      first_error_ = inferred;
      return inferred;
    }
  }
  chunk->anchor = FirstRowAnchor(bytes);
  chunk->base = ChooseBase(chunk->offset, bytes, chunk->anchor);
  chunk->bytes = std::move(bytes);
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
    {
      std::lock_guard<std::mutex> lock(mutex_);
      raw->done = true;
    }
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
    table::ReadOptions read;
    read.file_name = target_.file_name;
    read.first_line = chunk.first_line;
    read.has_header = chunk.index == 0 && *target_.format != table::Format::kJsonl;
    if (!read.has_header) {
      for (const table::Column& column : schema_.columns) read.column_names.push_back(column.name);
    }
    auto reader = table::RowReader::Open(*target_.format, chunk.bytes, read);
    if (!reader.ok()) {
      chunk.status = reader.status();
      return;
    }
    chunk.profile = std::make_unique<ProfileBuilder>(schema_, options_->profile);
    const size_t width = schema_.columns.size();
    while (true) {
      auto more = (*reader)->Next();
      if (!more.ok()) {
        chunk.status = more.status();
        return;
      }
      if (!*more) break;
      const std::vector<table::Cell>& cells = (*reader)->cells();
      if (cells.size() > width) chunk.needs_reprofile = true;  // a JSONL key not seen before
      for (size_t i = 0; i < width && i < cells.size(); ++i) {
        bool widen = false;
        Status checked = table::CheckCell(schema_.columns[i], cells[i], target_.file_name,
                                          (*reader)->line(), static_cast<int>(i) + 1, &widen);
        if (!checked.ok()) {
          chunk.status = checked;
          return;
        }
        if (widen) chunk.needs_reprofile = true;
      }
      if (!chunk.needs_reprofile) chunk.profile->Add(**reader);
      ++chunk.rows;
    }
  }
  auto stored = index_->Depth(chunk.id);
  if (!stored.ok()) {
    chunk.status = stored.status();
    return;
  }
  if (stored->has_value() || !index_->Claim(chunk.id)) return;
  objects::PutOptions put;
  put.zstd_level = options_->zstd_level;
  int depth = 0;
  if (chunk.base && *chunk.base != chunk.id) {
    auto base_depth = index_->Depth(*chunk.base);
    if (base_depth.ok() && base_depth->has_value() && **base_depth < options_->max_delta_depth) {
      put.base = *chunk.base;
      depth = **base_depth + 1;
    }
  }
  auto info = objects_->Put(chunk.id, chunk.bytes, put);
  if (!info.ok()) {
    chunk.status = info.status();
    return;
  }
  if (info->encoding != objects::Encoding::kZstdDelta) depth = 0;
  chunk.is_new = true;
  chunk.stored_bytes = info->stored_size;
  index_->AddPending(NewObject{chunk.id, *info, depth});
  FaultPoint("data.ingest.after_chunk");
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
      if (front->profile && !needs_reprofile_) profile_->Merge(std::move(*front->profile));
      chunks_.push_back(ChunkRef{front->id, front->bytes.size(), front->rows, front->first_line,
                                 front->anchor});
      rows_ += front->rows;
      stats_.chunks += 1;
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

// The rare slow path: a later chunk widened a column (int64 -> float64) or brought a JSONL key
// the first chunk did not have. Infer over every row, then check and profile again, in order.
Status Ingest::Reprofile(TableVersion& version) {
  StoreLoader loader(objects_);
  const table::Format format = *target_.format;
  auto open_chunk = [&](size_t i, const std::string& bytes, const std::vector<std::string>& names) {
    table::ReadOptions read;
    read.file_name = target_.file_name;
    read.first_line = version.chunks[i].first_line;
    read.has_header = i == 0 && format != table::Format::kJsonl;
    if (!read.has_header) read.column_names = names;
    return table::RowReader::Open(format, bytes, read);
  };
  table::SchemaInferrer inferrer(format);
  std::vector<std::string> names;
  for (size_t i = 0; i < version.chunks.size(); ++i) {
    KILN_ASSIGN_OR_RETURN(std::string bytes, loader.Load(version.chunks[i].id));
    KILN_ASSIGN_OR_RETURN(std::unique_ptr<table::RowReader> reader, open_chunk(i, bytes, names));
    while (true) {
      KILN_ASSIGN_OR_RETURN(bool more, reader->Next());
      if (!more) break;
      inferrer.Observe(*reader);
    }
    names = reader->column_names();
  }
  schema_ = inferrer.Finish();
  version.schema = schema_;
  names.clear();
  for (const table::Column& column : schema_.columns) names.push_back(column.name);
  profile_ = std::make_unique<ProfileBuilder>(schema_, options_->profile);
  for (size_t i = 0; i < version.chunks.size(); ++i) {
    KILN_ASSIGN_OR_RETURN(std::string bytes, loader.Load(version.chunks[i].id));
    KILN_ASSIGN_OR_RETURN(std::unique_ptr<table::RowReader> reader, open_chunk(i, bytes, names));
    while (true) {
      KILN_ASSIGN_OR_RETURN(bool more, reader->Next());
      if (!more) break;
      const std::vector<table::Cell>& cells = reader->cells();
      for (size_t c = 0; c < schema_.columns.size() && c < cells.size(); ++c) {
        bool widen = false;
        KILN_RETURN_IF_ERROR(table::CheckCell(schema_.columns[c], cells[c], target_.file_name,
                                              reader->line(), static_cast<int>(c) + 1, &widen));
      }
      profile_->Add(*reader);
    }
  }
  return Status::Ok();
}

Result<TableVersion> Ingest::Finish() {
  KILN_RETURN_IF_ERROR(Cut(/*at_eof=*/true));
  KILN_RETURN_IF_ERROR(CollectReady(/*wait_all=*/true));
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
    if (needs_reprofile_) KILN_RETURN_IF_ERROR(Reprofile(version));
    if (version.key && version.schema.Find(*version.key) < 0) {
      return InvalidArgument("--key '" + *version.key + "': " + target_.file_name +
                             " has no such column");
    }
    std::string profile_text = profile_->Finish().dump();
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
  }
  std::optional<Digest> previous_manifest;
  if (target_.previous != nullptr) previous_manifest = target_.previous->manifest;
  KILN_ASSIGN_OR_RETURN(version.manifest,
                        PutMetadataObject(*objects_, *index_, manifest.dump(), previous_manifest,
                                          options_->max_delta_depth));
  return version;
}

}  // namespace kiln::data
