#include "kiln/objects/chunker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/hash.h"

namespace kiln::objects {
namespace {

constexpr ChunkerOptions kSmall{
    .min_size = 16 << 10, .average_size = 64 << 10, .max_size = 256 << 10};
constexpr ChunkerOptions kTiny{.min_size = 64, .average_size = 256, .max_size = 1024};

// Deterministic test data.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  size_t Below(size_t n) { return static_cast<size_t>(Next() % n); }

 private:
  uint64_t state_;
};

// CSV-like rows; with `quoted`, some fields are quoted and hold commas, "" escapes and newlines.
// Rows are an increasing id plus one of a few thousand random bodies (cheap to make, even in a
// sanitizer build).
std::string CsvRows(size_t bytes, uint64_t seed, bool quoted = true, size_t first_id = 0) {
  static const char* kNames[] = {"alice", "bob", "carol", "dave", "erin", "frank", "grace"};
  static const char* kNotes[] = {"\"line one\nline two\"",
                                 "\"said \"\"hi\"\", left\"",
                                 "\"a,b,c\"",
                                 "\"\n\n\"",
                                 "\"\"\"\"",
                                 "\"x\"\"\ny\""};
  Random random(seed);
  std::vector<std::string> bodies(4096);
  for (std::string& body : bodies) {
    body = std::string(",") + kNames[random.Below(7)] + "," +
           std::to_string(random.Below(1000000)) + "." + std::to_string(random.Below(100)) + ",";
    if (quoted && random.Below(4) == 0) {
      body += kNotes[random.Below(6)];
    } else {
      body += std::to_string(random.Next() % 100000000);
    }
    body += '\n';
  }
  std::string out;
  out.reserve(bytes + 256);
  for (size_t id = first_id; out.size() < bytes; ++id) {
    out += std::to_string(id);
    out += bodies[random.Below(bodies.size())];
  }
  return out;
}

std::string RandomBytes(size_t bytes, uint64_t seed) {
  Random random(seed);
  std::string out(bytes, '\0');
  for (char& c : out) c = static_cast<char>(random.Next() >> 56);
  return out;
}

// Feeds `input` to a fresh chunker the way a reader would: `step` more bytes whenever it asks.
std::vector<std::string_view> Chunk(std::string_view input, RowBoundary boundary,
                                    ChunkerOptions options, size_t step = 1 << 30) {
  Chunker chunker(boundary, options);
  std::vector<std::string_view> chunks;
  size_t start = 0;
  size_t fed = std::min(step, input.size());
  while (start < input.size()) {
    bool at_eof = fed == input.size();
    size_t cut = chunker.NextCut(input.substr(start, fed - start), at_eof);
    if (cut == 0) {
      EXPECT_FALSE(at_eof) << "NextCut returned 0 at eof with " << fed - start << " bytes left";
      if (at_eof) break;
      fed = std::min(fed + step, input.size());
      continue;
    }
    EXPECT_LE(cut, fed - start);
    chunks.push_back(input.substr(start, cut));
    start += cut;
  }
  return chunks;
}

std::vector<uint64_t> Hashes(const std::vector<std::string_view>& chunks) {
  std::vector<uint64_t> hashes;
  for (std::string_view chunk : chunks) hashes.push_back(Xxh3(chunk));
  return hashes;
}

// How many of `after`'s chunks do not occur in `before` (would have to be stored).
size_t NewChunks(const std::vector<std::string_view>& before,
                 const std::vector<std::string_view>& after) {
  std::vector<uint64_t> before_hashes = Hashes(before);
  std::set<uint64_t> known(before_hashes.begin(), before_hashes.end());
  size_t fresh = 0;
  for (uint64_t hash : Hashes(after)) fresh += known.count(hash) == 0 ? 1 : 0;
  return fresh;
}

bool EvenQuotes(std::string_view text) {
  return std::count(text.begin(), text.end(), '"') % 2 == 0;
}

struct BoundaryCase {
  const char* name;
  RowBoundary boundary;
};
const BoundaryCase kBoundaries[] = {
    {"bytes", RowBoundary::kBytes}, {"lines", RowBoundary::kLines}, {"csv", RowBoundary::kCsv}};

TEST(ChunkerTest, ChunksConcatenateToTheInput) {
  const std::string inputs[] = {"",
                                "x",
                                "a,b\n",
                                CsvRows(3 << 20, 1),
                                RandomBytes(1 << 20, 2),
                                CsvRows(100000, 3).substr(0, 99999)};
  for (const auto& [name, boundary] : kBoundaries) {
    for (const std::string& input : inputs) {
      std::string joined;
      for (std::string_view chunk : Chunk(input, boundary, kSmall)) {
        EXPECT_FALSE(chunk.empty()) << name;
        joined += chunk;
      }
      EXPECT_EQ(joined, input) << name << ", input of " << input.size() << " bytes";
    }
  }
}

TEST(ChunkerTest, CutsDoNotDependOnHowTheInputIsFed) {
  std::string input = CsvRows(2 << 20, 4);
  input.insert(input.size() / 2, std::string(300 << 10, 'z'));  // a row longer than max_size
  for (const auto& [name, boundary] : kBoundaries) {
    std::vector<uint64_t> whole = Hashes(Chunk(input, boundary, kSmall));
    EXPECT_GT(whole.size(), 20u) << name;
    for (size_t step : {size_t{4000}, size_t{65536}, size_t{256 << 10}, size_t{(1 << 20) + 7}}) {
      EXPECT_EQ(Hashes(Chunk(input, boundary, kSmall, step)), whole)
          << name << ", fed " << step << " bytes at a time";
    }
  }
}

TEST(ChunkerTest, CsvNeverCutsInsideAQuotedField) {
  // Quoted fields full of newlines, some longer than the whole window.
  std::string input = CsvRows(2 << 20, 5);
  std::string long_row = "1,long,\"";
  long_row.append(3000, '\n');
  long_row += "\"\"x\"\"\",2\n";
  for (size_t at = 100000; at < input.size(); at += 400000) {
    at = input.find('\n', at) + 1;
    input.insert(at, long_row);
  }
  size_t offset = 0;
  bool in_quotes = false;
  std::vector<std::string_view> chunks = Chunk(input, RowBoundary::kCsv, kTiny, 777);
  ASSERT_GT(chunks.size(), 1000u);
  for (size_t i = 0; i + 1 < chunks.size(); ++i) {
    offset += chunks[i].size();
    in_quotes ^= !EvenQuotes(chunks[i]);
    ASSERT_EQ(chunks[i].back(), '\n') << "chunk " << i;
    ASSERT_FALSE(in_quotes) << "cut at byte " << offset << " is inside quotes";
  }
}

TEST(ChunkerTest, LinesCutOnlyAfterNewlines) {
  std::string input = CsvRows(1 << 20, 6, /*quoted=*/false);
  std::vector<std::string_view> chunks = Chunk(input, RowBoundary::kLines, kTiny);
  for (std::string_view chunk : chunks) ASSERT_EQ(chunk.back(), '\n');
}

TEST(ChunkerTest, ChunkSizesStayWithinBounds) {
  std::string input = CsvRows(4 << 20, 7);
  for (const auto& [name, boundary] : kBoundaries) {
    std::vector<std::string_view> chunks = Chunk(input, boundary, kSmall);
    size_t total = 0;
    for (size_t i = 0; i < chunks.size(); ++i) {
      total += chunks[i].size();
      if (i + 1 < chunks.size()) {
        EXPECT_GE(chunks[i].size(), kSmall.min_size) << name << " " << i;
      }
      EXPECT_LE(chunks[i].size(), kSmall.max_size) << name << " " << i;
    }
    // The average is min_size plus the expected distance to a candidate.
    double average = static_cast<double>(total) / static_cast<double>(chunks.size());
    EXPECT_GT(average, 0.5 * (kSmall.min_size + kSmall.average_size)) << name;
    EXPECT_LT(average, 1.5 * (kSmall.min_size + kSmall.average_size)) << name;
  }
}

TEST(ChunkerTest, RowLongerThanMaxSizeBecomesOneChunkEndingAtItsEnd) {
  std::string long_row = std::string(5000, 'x') + "\n";
  std::string input = CsvRows(3000, 8, false) + long_row + CsvRows(3000, 9, false);
  for (RowBoundary boundary : {RowBoundary::kLines, RowBoundary::kCsv}) {
    std::vector<std::string_view> chunks = Chunk(input, boundary, kTiny, 100);
    bool found = false;
    for (std::string_view chunk : chunks) {
      if (chunk.size() > kTiny.max_size) {
        EXPECT_TRUE(chunk.ends_with(long_row));
        found = true;
      }
    }
    EXPECT_TRUE(found);
  }
}

TEST(ChunkerTest, AsksForMoreUntilTheRowEndIsInTheBuffer) {
  std::string input = std::string(kTiny.max_size * 3, 'x') + "\nnext\n";
  Chunker chunker(RowBoundary::kCsv, kTiny);
  EXPECT_EQ(chunker.NextCut(std::string_view(input).substr(0, kTiny.max_size * 2), false), 0u);
  EXPECT_EQ(chunker.NextCut(std::string_view(input).substr(0, kTiny.max_size * 3), false), 0u);
  EXPECT_EQ(chunker.NextCut(input, false), kTiny.max_size * 3 + 1);
  EXPECT_EQ(chunker.NextCut("next\n", true), 5u);
}

TEST(ChunkerTest, QuoteOpenAtEofStillEmitsTheTail) {
  std::string input = "a,\"open field\n" + std::string(5000, 'y');
  std::vector<std::string_view> chunks = Chunk(input, RowBoundary::kCsv, kTiny, 500);
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0], input);
}

TEST(ChunkerTest, OneByteEditChangesOnlyTheChunkAroundIt) {
  // 16 MB in chunks of about 320 KB: the default sizes scaled down by four.
  constexpr ChunkerOptions kQuarter{
      .min_size = 64 << 10, .average_size = 256 << 10, .max_size = 1 << 20};
  std::string before = CsvRows(16 << 20, 10);
  std::string after = before;
  size_t at = after.find_first_of("0123456789", after.size() / 2);
  after[at] = after[at] == '7' ? '3' : '7';
  for (RowBoundary boundary : {RowBoundary::kCsv, RowBoundary::kBytes}) {
    std::vector<std::string_view> old_chunks = Chunk(before, boundary, kQuarter);
    std::vector<std::string_view> new_chunks = Chunk(after, boundary, kQuarter);
    ASSERT_GT(new_chunks.size(), 40u);
    // The chunk holding the edit changes, and at most its neighbour (if the edit made or
    // removed a cut).
    size_t fresh = NewChunks(old_chunks, new_chunks);
    EXPECT_GE(fresh, 1u);
    EXPECT_LE(fresh, 2u);
  }
}

TEST(ChunkerTest, RowsInsertedAtTheFrontShiftChunksThatThenResync) {
  std::string before = CsvRows(8 << 20, 11);
  std::string after = CsvRows(1 << 20, 12, true, 90000000) + before;
  std::vector<std::string_view> old_chunks = Chunk(before, RowBoundary::kCsv, kSmall);
  std::vector<std::string_view> new_chunks = Chunk(after, RowBoundary::kCsv, kSmall);
  // The inserted megabyte fills about 13 new chunks; past it the cuts fall where they did.
  ASSERT_GT(old_chunks.size(), 80u);
  EXPECT_LT(NewChunks(old_chunks, new_chunks), 20u);
  EXPECT_EQ(new_chunks.back(), old_chunks.back());
}

TEST(ChunkerTest, AppendingChangesOnlyTheLastChunk) {
  std::string before = CsvRows(4 << 20, 13);
  std::string after = before + CsvRows(1 << 20, 14, true, 5000000);
  for (const auto& [name, boundary] : kBoundaries) {
    std::vector<uint64_t> old_hashes = Hashes(Chunk(before, boundary, kSmall));
    std::vector<uint64_t> new_hashes = Hashes(Chunk(after, boundary, kSmall));
    ASSERT_GT(new_hashes.size(), old_hashes.size()) << name;
    old_hashes.pop_back();
    EXPECT_TRUE(std::equal(old_hashes.begin(), old_hashes.end(), new_hashes.begin())) << name;
  }
}

// The gear table is part of the storage format: cuts must never change between versions, or
// new commits stop sharing chunks with old ones.
TEST(ChunkerTest, CutPositionsArePinned) {
  std::string input = RandomBytes(1 << 20, 42);
  std::vector<size_t> cuts;
  for (std::string_view chunk : Chunk(input, RowBoundary::kBytes, kTiny)) {
    cuts.push_back(static_cast<size_t>(chunk.data() - input.data()) + chunk.size());
    if (cuts.size() == 8) break;
  }
  EXPECT_EQ(cuts, (std::vector<size_t>{141, 564, 628, 916, 1171, 1253, 2125, 2367}));
}

}  // namespace
}  // namespace kiln::objects
