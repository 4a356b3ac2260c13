// Commits through the fused numeric CSV parse (ProfileBuilder::AddNumericCsv) store exactly what
// commits through the row reader store: the same manifests, profiles and errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "kiln/core/file_util.h"
#include "kiln/data/repository.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_database.h"

namespace kiln::data {
namespace {

using kiln::testing::TempDir;
using kiln::testing::TestDatabase;

RepositoryOptions Options(bool fused) {
  RepositoryOptions options;
  options.threads = 2;
  options.chunker.min_size = 2 << 10;  // small chunks: the test tables span many
  options.chunker.average_size = 8 << 10;
  options.chunker.max_size = 32 << 10;
  options.profile.sample_size = 500;  // so that the chunk samples are cut by key limits
  options.fused_numeric_parse = fused;
  return options;
}

// A numeric table like the benchmark's: an int64 id and float64 columns such as 822.465, with
// nulls, negatives and now and then a long decimal or a special value.
std::string NumericTable(int rows, char delimiter, uint64_t seed, int from = 0) {
  std::mt19937_64 random(seed);
  std::string out = "id";
  for (int c = 0; c < 4; ++c) out += delimiter + std::string("f") + std::to_string(c);
  out += '\n';
  for (int i = from; i < from + rows; ++i) {
    out += std::to_string(i);
    for (int c = 0; c < 4; ++c) {
      out += delimiter;
      const uint64_t pick = random() % 50;
      if (pick == 0) continue;  // null
      if (pick == 1) {
        out += "-1234567.12345678901234";
        continue;
      }
      if (pick == 2) {
        out += c % 2 ? "nan" : "1e5";
        continue;
      }
      out += (pick % 3 == 0 ? "-" : "") + std::to_string(random() % 1000) + "." +
             std::to_string(100 + random() % 900);
    }
    out += '\n';
  }
  return out;
}

class IngestFusedTest : public ::testing::TestWithParam<store::Backend> {
 protected:
  struct Side {
    explicit Side(store::Backend backend, bool fused) : database(backend) {
      auto opened = Repository::Open(database.db(), dir.Join("objects"), Options(fused));
      EXPECT_TRUE(opened.ok()) << opened.status().ToString();
      if (opened.ok()) repository = std::move(*opened);
    }
    TestDatabase database;
    TempDir dir;
    std::unique_ptr<Repository> repository;
  };

  std::string Write(const std::string& name, const std::string& contents) {
    std::string path = files_.Join(name);
    std::ofstream(path, std::ios::binary) << contents;
    return path;
  }

  static Result<CommitResult> Commit(Repository& repository, const std::string& path,
                                     std::optional<std::string> table = {}) {
    CommitRequest request;
    request.message = "m";
    request.author = "tester";
    request.inputs.push_back({path, std::move(table), {}});
    return repository.Commit(request);
  }

  // Commits `contents` on both sides and requires the same outcome: the same error, or the same
  // table version (rows, schema, manifest and profile objects) and profile.
  void CommitBoth(const std::string& name, const std::string& contents,
                  std::optional<std::string> table = {}) {
    SCOPED_TRACE(name);
    const std::string path = Write(name, contents);
    Result<CommitResult> fused = Commit(*fused_.repository, path, table);
    Result<CommitResult> generic = Commit(*generic_.repository, path, table);
    ASSERT_EQ(fused.ok(), generic.ok())
        << fused.status().ToString() << " / " << generic.status().ToString();
    if (!fused.ok()) {
      EXPECT_EQ(fused.status().ToString(), generic.status().ToString());
      return;
    }
    ASSERT_EQ(fused->stats.size(), 1u);
    EXPECT_EQ(fused->stats[0].rows, generic->stats[0].rows);
    EXPECT_EQ(fused->stats[0].chunks_parsed, generic->stats[0].chunks_parsed);
    const std::string table_name = table ? *table : std::filesystem::path(name).stem().string();
    auto a = fused_.repository->GetTable("main", table_name);
    auto b = generic_.repository->GetTable("main", table_name);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    EXPECT_EQ(a->rows, b->rows);
    EXPECT_EQ(a->schema.ToJson().dump(), b->schema.ToJson().dump());
    EXPECT_EQ(a->manifest.Hex(), b->manifest.Hex());
    ASSERT_TRUE(a->profile.has_value());
    ASSERT_TRUE(b->profile.has_value());
    EXPECT_EQ(a->profile->Hex(), b->profile->Hex());
    auto profile_a = fused_.repository->Profile("main", table_name);
    auto profile_b = generic_.repository->Profile("main", table_name);
    ASSERT_TRUE(profile_a.ok() && profile_b.ok());
    EXPECT_EQ(profile_a->dump(), profile_b->dump());
  }

  Side fused_{GetParam(), true};
  Side generic_{GetParam(), false};
  TempDir files_;
};

INSTANTIATE_TEST_SUITE_P(Backends, IngestFusedTest,
                         ::testing::ValuesIn(kiln::testing::AllBackends()),
                         kiln::testing::BackendName);

TEST_P(IngestFusedTest, NumericCsvAndTsvCommitTheSameManifestsAndProfiles) {
  CommitBoth("numbers.csv", NumericTable(2500, ',', 1));
  CommitBoth("numbers.tsv", NumericTable(2500, '\t', 2));
  // A second version with rows replaced, appended and removed: saved chunk profiles merged,
  // edits taken back, the rest parsed.
  std::string next = NumericTable(2500, ',', 1);
  next.replace(next.find("\n1000,") + 1, 4, "7777");
  const size_t removed = next.find("\n2000,") + 1;
  next.erase(removed, next.find('\n', removed) + 1 - removed);
  const std::string appended = NumericTable(300, ',', 3, 2500);
  next += appended.substr(appended.find('\n') + 1);
  CommitBoth("numbers_v2.csv", next, "numbers");
}

TEST_P(IngestFusedTest, ChunksTheFusedParseDeclinesAreParsedAlike) {
  // A quoted field, CRLF line ends, a blank line, all well past the first chunk.
  std::string quoted = NumericTable(2500, ',', 4);
  quoted.replace(quoted.find("\n1500,") + 1, 4, "\"1500\"");
  CommitBoth("quoted.csv", quoted);
  std::string crlf = NumericTable(2500, ',', 5);
  for (size_t at = crlf.find('\n', crlf.size() / 2); at != std::string::npos;
       at = crlf.find('\n', at + 2)) {
    crlf.insert(at, "\r");
  }
  CommitBoth("crlf.csv", crlf);
  std::string blank = NumericTable(2500, ',', 6);
  blank.insert(blank.find("\n1200,") + 1, "\n\n");
  CommitBoth("blank.csv", blank);
  std::string no_final_newline = NumericTable(2500, ',', 7);
  no_final_newline.pop_back();
  CommitBoth("unterminated.csv", no_final_newline);
}

TEST_P(IngestFusedTest, WideningAndBadCellsGiveTheSameResultAndErrors) {
  // The id column turns decimal in a later chunk: the table is reprofiled with float64.
  std::string widened = NumericTable(2500, ',', 8);
  widened.replace(widened.find("\n2000,") + 1, 4, "2000.5");
  CommitBoth("widened.csv", widened);
  std::string bad = NumericTable(2500, ',', 9);
  bad.replace(bad.find("\n1700,") + 1, 4, "abc");
  CommitBoth("bad.csv", bad);
  std::string ragged = NumericTable(2500, ',', 10);
  ragged.insert(ragged.find("\n2200,"), ",1");
  CommitBoth("ragged.csv", ragged);
}

}  // namespace
}  // namespace kiln::data
