// Test support for the data layer: table versions cut by hand into row-aligned chunks, held by
// a real in-memory ChunkLoader that counts what it is asked for.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kiln/core/hash.h"
#include "kiln/core/status.h"
#include "kiln/data/table_version.h"
#include "kiln/table/inference.h"
#include "kiln/table/reader.h"

namespace kiln::data::testing {

class MemoryLoader : public ChunkLoader {
 public:
  Digest Put(const std::string& bytes) {
    Digest id = Sha256Of(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    chunks_[id] = bytes;
    return id;
  }

  Result<std::string> Load(const Digest& id) override {
    std::lock_guard<std::mutex> lock(mutex_);
    ++loads_;
    ++loaded_[id];
    auto found = chunks_.find(id);
    if (found == chunks_.end()) return NotFound("chunk " + id.Hex());
    return found->second;
  }

  int loads() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return loads_;
  }
  bool WasLoaded(const Digest& id) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return loaded_.contains(id);
  }
  void ResetCounts() {
    std::lock_guard<std::mutex> lock(mutex_);
    loads_ = 0;
    loaded_.clear();
  }

 private:
  mutable std::mutex mutex_;  // guards everything below
  std::map<Digest, std::string> chunks_;
  std::map<Digest, int> loaded_;
  int loads_ = 0;
};

// Appends to `version` the chunks of a CSV given as `lines` (the header, then one line per row,
// each ending in '\n'), cut before each row index in `chunk_starts` (chunk 0 holds the header),
// and puts them in `loader`. Sets rows, bytes, and each chunk's size, rows and first line.
inline void CutCsvIntoChunks(const std::vector<std::string>& lines,
                             const std::vector<size_t>& chunk_starts, MemoryLoader& loader,
                             TableVersion& version) {
  version.rows = lines.size() - 1;
  std::vector<size_t> starts = {0};
  for (size_t row : chunk_starts) starts.push_back(row);
  starts.push_back(lines.size() - 1);
  for (size_t c = 0; c + 1 < starts.size(); ++c) {
    std::string bytes = c == 0 ? lines[0] : "";
    for (size_t row = starts[c]; row < starts[c + 1]; ++row) bytes += lines[row + 1];
    ChunkRef chunk;
    chunk.id = loader.Put(bytes);
    chunk.size = bytes.size();
    chunk.rows = starts[c + 1] - starts[c];
    chunk.first_line = c == 0 ? 1 : static_cast<int64_t>(starts[c]) + 2;
    version.bytes += bytes.size();
    version.chunks.push_back(chunk);
  }
}

inline std::string_view Extension(table::Format format) {
  switch (format) {
    case table::Format::kCsv: return ".csv";
    case table::Format::kTsv: return ".tsv";
    case table::Format::kJsonl: return ".jsonl";
  }
  return "";
}

// A version of table `name` whose chunks are `chunks` (whole rows; for CSV/TSV the first
// starts with the header). The schema is inferred from all rows; rows, lines and ids are
// computed as a commit would.
inline TableVersion MakeVersion(MemoryLoader& loader, const std::string& name, table::Format format,
                                const std::vector<std::string>& chunks,
                                std::optional<std::string> key = std::nullopt) {
  TableVersion version;
  version.name = name;
  version.file_name = name + std::string(Extension(format));
  version.format = format;
  version.key = std::move(key);
  std::string whole;
  for (const std::string& chunk : chunks) whole += chunk;

  table::ReadOptions options;
  options.file_name = version.file_name;
  options.has_header = format != table::Format::kJsonl;
  auto reader = table::RowReader::Open(format, whole, options);
  EXPECT_TRUE(reader.ok()) << reader.status().ToString();
  if (!reader.ok()) return version;
  table::SchemaInferrer inferrer(format);
  while (true) {
    auto more = (*reader)->Next();
    EXPECT_TRUE(more.ok()) << more.status().ToString();
    if (!more.ok() || !*more) break;
    inferrer.Observe(**reader);
  }
  version.schema = inferrer.Finish();

  std::string manifest(table::FormatName(format));
  int64_t line = 1;
  for (const std::string& chunk : chunks) {
    ChunkRef ref;
    ref.id = loader.Put(chunk);
    ref.size = chunk.size();
    ref.first_line = line;
    for (char c : chunk) line += c == '\n';
    version.chunks.push_back(ref);
    manifest += ref.id.Hex();
  }
  for (size_t i = 0; i < chunks.size(); ++i) {
    auto chunk_reader = table::RowReader::Open(format, chunks[i], ChunkReadOptions(version, i));
    EXPECT_TRUE(chunk_reader.ok()) << chunk_reader.status().ToString();
    if (!chunk_reader.ok()) continue;
    while (true) {
      auto more = (*chunk_reader)->Next();
      EXPECT_TRUE(more.ok()) << more.status().ToString();
      if (!more.ok() || !*more) break;
      ++version.chunks[i].rows;
    }
    version.rows += version.chunks[i].rows;
  }
  version.bytes = whole.size();
  version.manifest = Sha256Of(manifest);
  return version;
}

// Every row of `text` (a whole file) as "cell|cell|..." with nulls as "<null>".
inline std::vector<std::string> ReadRows(table::Format format, const std::string& text) {
  std::vector<std::string> rows;
  table::ReadOptions options;
  options.file_name = "merged";
  options.has_header = format != table::Format::kJsonl;
  auto reader = table::RowReader::Open(format, text, options);
  EXPECT_TRUE(reader.ok()) << reader.status().ToString();
  if (!reader.ok()) return rows;
  while (true) {
    auto more = (*reader)->Next();
    EXPECT_TRUE(more.ok()) << more.status().ToString() << "\n" << text;
    if (!more.ok() || !*more) break;
    std::string row;
    const std::vector<table::Cell>& cells = (*reader)->cells();
    for (size_t i = 0; i < cells.size(); ++i) {
      if (i > 0) row += '|';
      row += cells[i].is_null ? std::string("<null>") : std::string(cells[i].text);
    }
    rows.push_back(row);
  }
  return rows;
}

}  // namespace kiln::data::testing
