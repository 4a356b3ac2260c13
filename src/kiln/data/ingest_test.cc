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
#include "kiln/data/profile.h"
#include "kiln/data/repository.h"
#include "kiln/table/inference.h"
#include "kiln/table/reader.h"
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
    options.profile.sample_size = sample_size_;
    options_ = options;
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

  // Commits `contents` as the new table `fresh_table` (parsed from scratch, no previous version
  // to reuse) and expects its stored profile to equal `table`'s, and fsck to be clean.
  void ExpectProfileOfAFreshCommit(const std::string& table, const std::string& fresh_table,
                                   const std::string& contents) {
    CommitStats fresh = Commit(fresh_table + ".csv", contents);
    EXPECT_EQ(fresh.chunks_parsed, fresh.chunks);
    EXPECT_EQ(Profile(table).dump(), Profile(fresh_table).dump());
    auto fsck = repository_->Fsck(nullptr);
    ASSERT_TRUE(fsck.ok()) << fsck.status().ToString();
    EXPECT_TRUE(fsck->problems.empty()) << fsck->ToJson().dump(2);
  }

  size_t sample_size_ = 400;  // far fewer than the rows: the key limits matter
  RepositoryOptions options_;
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
    ExpectProfileOfAFreshCommit(table, fresh_table, c.next);
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

// The JSONL form of a CSV without quotes: an object per row, numbers as numbers, other text as
// strings, empty fields left out.
std::string CsvToJsonl(const std::string& csv) {
  auto split = [](std::string_view line) {
    std::vector<std::string_view> fields;
    for (size_t start = 0;;) {
      const size_t comma = line.find(',', start);
      fields.push_back(line.substr(start, comma == std::string_view::npos ? comma : comma - start));
      if (comma == std::string_view::npos) return fields;
      start = comma + 1;
    }
  };
  std::string_view rest = csv;
  const size_t header_end = rest.find('\n');
  const std::vector<std::string_view> names = split(rest.substr(0, header_end));
  rest.remove_prefix(header_end + 1);
  std::string out;
  while (!rest.empty()) {
    const size_t line_end = rest.find('\n');
    const std::vector<std::string_view> fields = split(rest.substr(0, line_end));
    rest.remove_prefix(line_end + 1);
    std::string object;
    for (size_t i = 0; i < fields.size(); ++i) {
      if (fields[i].empty()) continue;
      const bool number = fields[i][0] == '-' || (fields[i][0] >= '0' && fields[i][0] <= '9');
      object += (object.empty() ? "{\"" : ",\"") + std::string(names[i]) + "\":" +
                (number ? std::string(fields[i]) : "\"" + std::string(fields[i]) + "\"");
    }
    out += object + "}\n";
  }
  return out;
}

// The stored profile of a first commit is the one a single builder over every row gives, also
// when the table has far fewer rows than its first chunk suggested: chunks are profiled keeping
// only the sample candidates such a table needs (ProfileBuilder::LimitSample), so then too few
// remain and the table is profiled again without a limit. CSV and JSONL alike.
TEST_P(SavedChunkProfileTest, FirstCommitsProfileEveryRowExactlyWhateverTheRowEstimate) {
  auto numeric_rows = [](int count, int long_after, bool sparse_c = false, size_t tail = 18) {
    std::string out = "id,a,b,c\n";
    for (int i = 0; i < count; ++i) {
      const std::string v = i < long_after
                                ? std::to_string(i % 10) + ".5"
                                : "-1234567890123456" + std::to_string(1000 + i % 8999) + ".25" +
                                      std::string(tail, '7');
      out += std::to_string(i) + "," + v + "," + v + "," + (sparse_c && i % 10 != 0 ? "" : v) +
             "\n";
    }
    return out;
  };
  struct Case {
    std::string name;
    std::string csv;
    bool jsonl_only = false;
  };
  // A key that only later rows have: the JSONL table's schema grows after its first chunk.
  std::string late_key = CsvToJsonl(numeric_rows(kRows / 2, 0));
  for (int i = 0; i < kRows / 2; ++i) {
    late_key += "{\"id\":" + std::to_string(kRows + i) + ",\"a\":" + std::to_string(i % 97) +
                ".25,\"late\":" + std::to_string(i) + "}\n";
  }
  const std::vector<Case> cases = {
      {"mixed columns", Rows(0, kRows)},
      {"numeric, even rows", numeric_rows(kRows, 0)},
      // The first chunk's short rows suggest ~9 times the rows the file has.
      {"numeric, short rows first", numeric_rows(kRows, 3000)},
      // The same, with JSONL's keys making the difference in row length smaller.
      {"numeric, much shorter rows first", numeric_rows(kRows, 3000, false, 80)},
      // A column with values in a tenth of the rows: its key limits are sized for its values.
      {"numeric, a sparse column", numeric_rows(kRows, 0, /*sparse_c=*/true)},
      {"a key only later rows have", late_key, /*jsonl_only=*/true},
  };
  int n = 0;
  for (const table::Format format : {table::Format::kCsv, table::Format::kJsonl}) {
    for (const Case& c : cases) {
      if (c.jsonl_only && format != table::Format::kJsonl) continue;
      const std::string contents =
          format == table::Format::kCsv || c.jsonl_only ? c.csv : CsvToJsonl(c.csv);
      const std::string file_name = "first" + std::to_string(n++) +
                                    (format == table::Format::kCsv ? ".csv" : ".jsonl");
      SCOPED_TRACE(c.name + ", " + file_name);
      CommitStats stats = Commit(file_name, contents);
      EXPECT_EQ(stats.chunks_parsed, stats.chunks);
      ASSERT_GT(stats.chunks, 10u);
      table::ReadOptions read;
      read.file_name = file_name;
      read.has_header = format == table::Format::kCsv;
      auto inferring = table::RowReader::Open(format, contents, read);
      ASSERT_TRUE(inferring.ok()) << inferring.status().ToString();
      table::SchemaInferrer inferrer(format);
      while (true) {
        Result<bool> more = (*inferring)->Next();
        ASSERT_TRUE(more.ok()) << more.status().ToString();
        if (!*more) break;
        inferrer.Observe(**inferring);
      }
      const table::Schema schema = inferrer.Finish();
      std::vector<std::string> names;
      for (const table::Column& column : schema.columns) names.push_back(column.name);
      ProfileBuilder whole(schema, options_.profile);
      if (format == table::Format::kJsonl) read.column_names = names;
      auto reader = table::RowReader::Open(format, contents, read);
      ASSERT_TRUE(reader.ok());
      while (true) {
        Result<bool> more = (*reader)->Next();
        ASSERT_TRUE(more.ok()) << more.status().ToString();
        if (!*more) break;
        whole.Add(**reader);
      }
      const std::string table = file_name.substr(0, file_name.find('.'));
      EXPECT_EQ(Profile(table), whole.Finish());
      auto fsck = repository_->Fsck(nullptr);
      ASSERT_TRUE(fsck.ok()) << fsck.status().ToString();
      EXPECT_TRUE(fsck->problems.empty()) << fsck->ToJson().dump(2);
    }
  }
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

// ---- Edited chunks: profiled from the replaced lines alone ------------------------------------

// "id,amount,score\n" (numeric columns only) then rows, with \r\n line ends if `crlf`; `edits`
// replace whole rows (without the line end). Row 5000 holds the table's smallest amount and
// row 6000 its largest score.
constexpr int kEditRows = 8000;  // about 18 chunks

std::string NumericRows(int count, const std::map<int, std::string>& edits = {},
                        bool crlf = false) {
  const std::string end = crlf ? "\r\n" : "\n";
  std::string out = "id,amount,score" + end;
  for (int i = 0; i < count; ++i) {
    auto edit = edits.find(i);
    if (edit != edits.end()) {
      out += edit->second + end;
    } else if (i == 5000) {
      out += "5000,-99999.5,1" + end;
    } else if (i == 6000) {
      out += "6000,12.5,99999" + end;
    } else {
      out += std::to_string(i) + "," + std::to_string((i * 7919) % 10007) + "." +
             std::to_string(i % 10) + "," +
             (i % 13 == 0 ? std::string() : std::to_string(i % 101)) + end;
    }
  }
  return out;
}

// Replaces every 97th row from `from` on (about 1%), keeping its id.
std::map<int, std::string> Scattered(int from = 3) {
  std::map<int, std::string> edits;
  for (int i = from; i < kEditRows; i += 97) {
    edits[i] = std::to_string(i) + "," + std::to_string(i % 311) + ".25," + std::to_string(i % 7);
  }
  return edits;
}

class EditedChunkProfileTest : public SavedChunkProfileTest {
 protected:
  // Chunks of at most 32 KiB hold fewer rows than the sample size: ProfileBuilder::Remove's
  // bound; the table still has far more rows than the sample, so the key limits matter.
  EditedChunkProfileTest() { sample_size_ = 2000; }

  // The error committing `contents` as t.csv in a repository of its own: a full parse.
  std::string FreshCommitError(const std::string& contents) {
    TempDir dir;
    TestDatabase database{GetParam()};
    // The same chunks (the first one's rows decide the schema), parsed from scratch.
    auto repository = Repository::Open(database.db(), dir.Join("objects"), options_);
    EXPECT_TRUE(repository.ok()) << repository.status().ToString();
    if (!repository.ok()) return "";
    std::string path = dir.Join("t.csv");
    std::ofstream(path, std::ios::binary | std::ios::trunc) << contents;
    CommitRequest request;
    request.message = "fresh";
    request.inputs.push_back(CommitInput{path, std::nullopt, std::nullopt});
    auto result = (*repository)->Commit(request);
    return result.ok() ? "" : result.status().ToString();
  }

  std::string CommitError(const std::string& contents) {
    std::string path = dir_.Join("work/t.csv");
    std::ofstream(path, std::ios::binary | std::ios::trunc) << contents;
    CommitRequest request;
    request.message = "bad";
    request.inputs.push_back(CommitInput{path, std::nullopt, std::nullopt});
    auto result = repository_->Commit(request);
    return result.ok() ? "" : result.status().ToString();
  }
};

struct EditCase {
  std::string name;
  std::string first;
  std::string next;
  bool expect_edits_profiled;  // most changed chunks profiled from their edits, not parsed
};

TEST_P(EditedChunkProfileTest, EditedChunksProfileExactlyAsParsingEverything) {
  std::map<int, std::string> in_header_chunk = {{1, "1,7.5,3"}, {2, "2,8.5,"}};
  std::map<int, std::string> special = Scattered();
  special[400] = "400,nan,5";
  special[800] = "800,inf,";
  special[1200] = "1200,-0.0,0";
  const std::vector<EditCase> cases = {
      {"scattered replaced lines", NumericRows(kEditRows), NumericRows(kEditRows, Scattered()),
       true},
      // Rows 5000 and 6000 hold the table's (so their chunks') min amount and max score.
      {"replaced lines holding a min and a max, and a new min", NumericRows(kEditRows),
       NumericRows(kEditRows,
                   {{5000, "5000,1.5,1"}, {6000, "6000,2.5,3"}, {7000, "7000,-999999.5,4"}}),
       true},
      {"nan, infinity, negative zero and nulls", NumericRows(kEditRows),
       NumericRows(kEditRows, special), true},
      {"lines of the first chunk, after the header", NumericRows(kEditRows),
       NumericRows(kEditRows, in_header_chunk), true},
      {"crlf lines", NumericRows(kEditRows, {}, true), NumericRows(kEditRows, Scattered(), true),
       true},
      {"last line without a newline",
       NumericRows(kEditRows).substr(0, NumericRows(kEditRows).size() - 1),
       [] {
         std::string next = NumericRows(kEditRows, Scattered());
         next.pop_back();
         next.back() = '8';
         return next;
       }(),
       true},
      // A decimal in the int64 id column: the whole table is profiled again, widened.
      {"a replaced line needs widening", NumericRows(kEditRows),
       NumericRows(kEditRows, {{7000, "7000.5,3.5,4"}}), false},
      // Category counts keep first-seen order: such tables are parsed.
      {"a table with a string column", Rows(0, kEditRows),
       Rows(0, kEditRows, {{100, "100,1.5,q,1"}, {5000, "5000,2.5,q,"}}), false},
      {"quoted fields", NumericRows(kEditRows), NumericRows(kEditRows, {{7000, "7000,\"3.5\",4"}}),
       false},
  };
  int n = 0;
  for (const EditCase& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string table = "e" + std::to_string(n);
    const std::string fresh_table = "efresh" + std::to_string(n++);
    CommitStats first = Commit(table + ".csv", c.first);
    ASSERT_GT(first.chunks, 10u);
    CommitStats next = Commit(table + ".csv", c.next);
    if (c.expect_edits_profiled) {
      EXPECT_LE(next.chunks_parsed * 4, next.chunks) << "edited chunks should not be parsed";
      EXPECT_GT(next.chunks_profiled_from_edits, 0u);
      EXPECT_EQ(next.ToJson()["chunks_profiled_from_edits"], next.chunks_profiled_from_edits);
    } else {
      EXPECT_EQ(next.chunks_profiled_from_edits, 0u);
    }
    ExpectProfileOfAFreshCommit(table, fresh_table, c.next);
    if (n > 1) continue;
    // The saved profiles of edited chunks serve the next version (edited again) exactly too.
    const std::string again = NumericRows(kEditRows, Scattered(50));
    Commit(table + ".csv", again);
    Commit(fresh_table + ".csv", again);
    EXPECT_EQ(Profile(table).dump(), Profile(fresh_table).dump());
  }
}

// "id,amount,third,tenth\n" then rows: `third` has a value in every third row, `tenth` in every
// tenth; `edits` replace whole rows.
std::string SparseRows(int count, const std::map<int, std::string>& edits = {}) {
  std::string out = "id,amount,third,tenth\n";
  for (int i = 0; i < count; ++i) {
    auto edit = edits.find(i);
    if (edit != edits.end()) {
      out += edit->second + "\n";
      continue;
    }
    out += std::to_string(i) + "," + std::to_string((i * 7919) % 10007) + ".5," +
           (i % 3 == 0 ? std::to_string(i % 997) : "") + "," +
           (i % 10 == 0 ? std::to_string(i % 89) + ".25" : "") + "\n";
  }
  return out;
}

// Chunk profiles keep each column's sample values below a key limit sized for the values that
// column holds: with one limit sized for the rows, a column with values in a third of them kept
// too few, its merged sample was not exact, and every later version parsed every chunk again.
TEST_P(EditedChunkProfileTest, SparseColumnsLetLaterVersionsMergeSavedProfiles) {
  constexpr int kSparseRows = 30000;  // `third` has 5 times the sample's values, `tenth` 1.5
  CommitStats first = Commit("s.csv", SparseRows(kSparseRows));
  ASSERT_GT(first.chunks, 40u);
  EXPECT_EQ(first.chunks_parsed, first.chunks);

  const std::string appended = SparseRows(kSparseRows + 300);
  CommitStats append = Commit("s.csv", appended);
  EXPECT_LE(append.chunks_parsed, 3u) << "rows appended: only the last chunks change";
  ExpectProfileOfAFreshCommit("s", "sfresh_append", appended);

  std::map<int, std::string> edits;
  for (int i = 5; i < kSparseRows; i += 97) {
    edits[i] = std::to_string(i) + ",3.5," + std::to_string(i % 5) + "," +
               (i % 2 == 0 ? "" : "7.75");
  }
  const std::string edited = SparseRows(kSparseRows + 300, edits);
  CommitStats edit = Commit("s.csv", edited);
  EXPECT_LE(edit.chunks_parsed * 4, edit.chunks) << "edited chunks should not be parsed";
  EXPECT_GT(edit.chunks_profiled_from_edits, edit.chunks / 2);
  ExpectProfileOfAFreshCommit("s", "sfresh_edit", edited);

  // The profiles saved by edits serve the next version too.
  const std::string again = edited + "99999,1.5,,\n";
  CommitStats after = Commit("s.csv", again);
  EXPECT_LE(after.chunks_parsed, 3u);
  ExpectProfileOfAFreshCommit("s", "sfresh_again", again);
}

TEST_P(EditedChunkProfileTest, BadCellOnAReplacedLineGivesTheFullParsesError) {
  const std::vector<std::pair<std::string, std::map<int, std::string>>> cases = {
      {"not a number", {{7000, "7000,abc,4"}}},
      {"second bad line after a good one", {{3000, "3000,1.5,2"}, {7500, "7500,1.5,x"}}},
      {"ragged row", {{7000, "7000,1.5"}}},
      {"bad line in the chunk after the first", {{2500, "2500,1.5,--1"}}},
  };
  Commit("t.csv", NumericRows(kEditRows));
  for (const auto& [name, edits] : cases) {
    SCOPED_TRACE(name);
    const std::string bad = NumericRows(kEditRows, edits);
    const std::string error = CommitError(bad);
    EXPECT_FALSE(error.empty());
    EXPECT_EQ(error, FreshCommitError(bad));
  }
  auto fsck = repository_->Fsck(nullptr);
  ASSERT_TRUE(fsck.ok()) << fsck.status().ToString();
  EXPECT_TRUE(fsck->problems.empty()) << fsck->ToJson().dump(2);
}

INSTANTIATE_TEST_SUITE_P(Backends, EditedChunkProfileTest,
                         ::testing::ValuesIn(kiln::testing::AllBackends()),
                         kiln::testing::BackendName);

INSTANTIATE_TEST_SUITE_P(Backends, SavedChunkProfileTest,
                         ::testing::ValuesIn(kiln::testing::AllBackends()),
                         kiln::testing::BackendName);

}  // namespace
}  // namespace kiln::data
