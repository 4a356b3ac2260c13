// Saved chunk profiles: a new version merges the saved profile of every chunk it shares with the
// previous version at the same line, and its profile is exactly the one parsing it all gives.
#include "kiln/data/ingest.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "kiln/core/file_util.h"
#include "kiln/core/thread_pool.h"
#include "kiln/data/repository.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_database.h"

namespace kiln::data {
namespace {

using kiln::testing::TempDir;
using kiln::testing::TestDatabase;

constexpr int kRows = 20000;

// "id,amount,label,score\n" then rows; `edits` replace whole rows (without the newline).
std::string Rows(int first, int count, const std::map<int, std::string>& edits = {}) {
  std::string out = "id,amount,label,score\n";
  for (int i = first; i < first + count; ++i) {
    auto edit = edits.find(i);
    if (edit != edits.end()) {
      out += edit->second + "\n";
      continue;
    }
    out += std::to_string(i) + "," + std::to_string((i * 7919) % 10007) + "." +
           std::to_string(i % 10) + "," + std::string(1, static_cast<char>('a' + i % 5)) + "," +
           (i % 13 == 0 ? std::string() : std::to_string(i % 101)) + "\n";
  }
  return out;
}

std::map<int, std::string> Block(int from, int count) {
  std::map<int, std::string> edits;
  for (int i = from; i < from + count; ++i) edits[i] = std::to_string(i) + ",-1.5,z,7";
  return edits;
}

struct ReuseCase {
  std::string name;
  std::string next;      // the second version's bytes (the first is Rows(0, kRows))
  bool expect_reuse;     // most chunks merged from saved profiles, not parsed
  bool reuse_after;      // the version after it (one more row) merges most chunks
};

class SavedChunkProfileTest : public ::testing::TestWithParam<store::Backend> {
 protected:
  void SetUp() override {
    RepositoryOptions options;
    options.threads = 2;
    options.chunker.min_size = 2 << 10;
    options.chunker.average_size = 8 << 10;
    options.chunker.max_size = 32 << 10;
    options.profile.sample_size = 400;  // far fewer than the rows: the key limits matter
    auto repository = Repository::Open(database_.db(), dir_.Join("objects"), options);
    ASSERT_TRUE(repository.ok()) << repository.status().ToString();
    repository_ = std::move(*repository);
  }

  CommitStats Commit(const std::string& file_name, const std::string& contents,
                     std::optional<std::string> table = std::nullopt) {
    std::string path = dir_.Join("work/" + file_name);
    EXPECT_TRUE(MakeDirs(dir_.Join("work")).ok());
    std::ofstream(path, std::ios::binary | std::ios::trunc) << contents;
    CommitRequest request;
    request.message = "commit " + file_name;
    request.author = "tester";
    request.inputs.push_back(CommitInput{path, table, std::nullopt});
    auto result = repository_->Commit(request);
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    if (!result.ok() || result->stats.empty()) return CommitStats();
    return result->stats[0];
  }

  Json Profile(const std::string& table) {
    auto profile = repository_->Profile("main", table);
    EXPECT_TRUE(profile.ok()) << profile.status().ToString();
    return profile.ok() ? *profile : Json();
  }

  TestDatabase database_{GetParam()};
  TempDir dir_;
  std::unique_ptr<Repository> repository_;
};

TEST_P(SavedChunkProfileTest, NextVersionsProfileEqualsParsingEverythingWhateverChanged) {
  const std::vector<ReuseCase> cases = {
      {"append", Rows(0, kRows + 500), true, true},
      {"block edit", Rows(0, kRows, Block(12000, 100)), true, true},
      {"scattered edits", Rows(0, kRows, {{100, "100,1.5,q,1"}, {9000, "9000,2.5,q,"},
                                          {19990, "19990,3.5,q,2"}}), true, true},
      // Far fewer rows than the limits were set for: too few saved candidates, so it is parsed
      // again, and saved again with limits for its own size.
      {"shrunk to a tenth", Rows(0, kRows / 10), false, true},
      // A late decimal id widens the column: every chunk profiled again with the new schema.
      // (The next version infers int64 from its first chunk again, and widens again.)
      {"widened column", Rows(0, kRows, {{19000, "19000.5,1.5,a,1"}}), false, false},
      // A new first row moves every line: no chunk is at its old line.
      {"row inserted at the top", Rows(-1, kRows + 1), false, true},
  };
  int n = 0;
  for (const ReuseCase& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string table = "t" + std::to_string(n);
    const std::string fresh_table = "fresh" + std::to_string(n++);
    CommitStats first = Commit(table + ".csv", Rows(0, kRows));
    EXPECT_EQ(first.chunks_parsed, first.chunks);
    ASSERT_GT(first.chunks, 20u);
    CommitStats next = Commit(table + ".csv", c.next);
    if (c.expect_reuse) {
      EXPECT_LE(next.chunks_parsed * 4, next.chunks) << "most chunks should merge saved profiles";
    } else {
      EXPECT_EQ(next.chunks_parsed, next.chunks);
    }
    // The same bytes as a new table: parsed from scratch, no previous version to reuse.
    CommitStats fresh = Commit(fresh_table + ".csv", c.next);
    EXPECT_EQ(fresh.chunks_parsed, fresh.chunks);
    EXPECT_EQ(Profile(table).dump(), Profile(fresh_table).dump());
    auto fsck = repository_->Fsck(nullptr);
    ASSERT_TRUE(fsck.ok()) << fsck.status().ToString();
    EXPECT_TRUE(fsck->problems.empty()) << fsck->ToJson().dump(2);
    // And the version after it reuses what this one saved.
    const std::string after_bytes = c.next + std::to_string(kRows + 900) + ",1.5,a,3\n";
    CommitStats after = Commit(table + ".csv", after_bytes);
    if (c.reuse_after) {
      EXPECT_LE(after.chunks_parsed, 3u) << "one row appended: only the last chunks change";
    } else {
      EXPECT_EQ(after.chunks_parsed, after.chunks);
    }
    Commit(fresh_table + ".csv", after_bytes);
    EXPECT_EQ(Profile(table).dump(), Profile(fresh_table).dump());
  }
}

TEST_P(SavedChunkProfileTest, GcKeepsSavedChunkProfilesOfLiveVersionsAndFsckChecksThem) {
  Commit("t.csv", Rows(0, kRows));
  Commit("t.csv", Rows(0, kRows + 300));
  GcOptions gc;
  gc.retention_ms = 0;
  auto collected = repository_->Gc(gc);
  ASSERT_TRUE(collected.ok()) << collected.status().ToString();
  auto fsck = repository_->Fsck(nullptr);
  ASSERT_TRUE(fsck.ok()) << fsck.status().ToString();
  EXPECT_TRUE(fsck->problems.empty()) << fsck->ToJson().dump(2);
  EXPECT_EQ(fsck->unreferenced_objects, 0);
  // The saved profiles survived gc: the next version still merges them.
  CommitStats next = Commit("t.csv", Rows(0, kRows + 600));
  EXPECT_LE(next.chunks_parsed * 4, next.chunks);
}

// However the caller splits the file into Append calls, the chunks are the same.
TEST_P(SavedChunkProfileTest, ChunksDoNotDependOnHowTheBytesArrive) {
  auto objects = objects::ObjectStore::OpenLocal(dir_.Join("direct"));
  ASSERT_TRUE(objects.ok()) << objects.status().ToString();
  RepositoryOptions options;
  options.chunker.min_size = 2 << 10;
  options.chunker.average_size = 8 << 10;
  options.chunker.max_size = 32 << 10;
  ThreadPool pool(2);
  // A quoted field spanning many chunk sizes makes one long row.
  const std::string bytes = Rows(0, 3000) + "9999,1.5,\"" + std::string(100000, 'x') + "\",1\n" +
                            Rows(3000, 3000).substr(22);
  auto chunks_of = [&](const std::vector<size_t>& pieces) {
    ObjectIndex index(database_.db());
    IngestTarget target;
    target.name = "t";
    target.file_name = "t.csv";
    target.format = table::Format::kCsv;
    Ingest ingest(objects->get(), &index, &pool, &options, target);
    size_t at = 0;
    for (size_t i = 0; at < bytes.size(); ++i) {
      size_t size = std::min(pieces[i % pieces.size()], bytes.size() - at);
      Status appended = ingest.Append(std::string_view(bytes).substr(at, size));
      EXPECT_TRUE(appended.ok()) << appended.ToString();
      at += size;
    }
    auto version = ingest.Finish();
    EXPECT_TRUE(version.ok()) << version.status().ToString();
    std::vector<std::string> ids;
    if (version.ok()) {
      for (const ChunkRef& chunk : version->chunks) ids.push_back(chunk.id.Hex());
      EXPECT_EQ(version->rows, 6001u);
    }
    return ids;
  };
  const std::vector<std::string> whole = chunks_of({bytes.size()});
  ASSERT_GT(whole.size(), 10u);
  for (const std::vector<size_t>& pieces : std::vector<std::vector<size_t>>{
           {7, 1000}, {4096}, {32 << 10}, {(32 << 10) + 1, 5}, {50000, 3, 70000}}) {
    SCOPED_TRACE(::testing::PrintToString(pieces));
    EXPECT_EQ(chunks_of(pieces), whole);
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, SavedChunkProfileTest,
                         ::testing::ValuesIn(kiln::testing::AllBackends()),
                         kiln::testing::BackendName);

}  // namespace
}  // namespace kiln::data
